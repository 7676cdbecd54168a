//! Lingering close: after answering a request whose body was not read (a 413, a 401 before the
//! body, a request timeout), read and discard what the client is still sending for a bounded
//! time and number of bytes before closing the socket.
//!
//! Why: closing a TCP socket with unread bytes in its receive buffer makes the kernel send a
//! reset instead of a FIN, and the reset can overtake the answer still on its way to the client:
//! a plain client that writes its whole body before reading (Python `requests`) then sees
//! "connection reset" or "broken pipe" instead of the 413 and its TAXII error body. nginx solves
//! this the same way (`lingering_close`, `lingering_time`, `lingering_timeout`): half-close our
//! side (the client reads the answer and then EOF), drain the client's side, then close.
//!
//! The drain runs inside the socket's `poll_shutdown`, which hyper calls when it closes an
//! HTTP/1 connection (under TLS, after the close_notify alert went out), so the connection keeps
//! its slot in the accept loop's limits while it lingers. It sits below TLS: the discarded bytes
//! are never decrypted. It only runs when the connection's last request left its body unread ([`LingerSwitch::set`]).

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Bounds of the drain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LingerLimits {
    /// Longest the whole drain may take.
    pub(crate) total: Duration,
    /// Longest the client may stay silent during the drain.
    pub(crate) idle: Duration,
    /// Most bytes discarded.
    pub(crate) bytes: u64,
}

/// Set by the request path when a request's body was left unread; read by the socket at close.
#[derive(Debug, Clone, Default)]
pub(crate) struct LingerSwitch(Arc<AtomicBool>);

impl LingerSwitch {
    /// Whether the connection's last request left its body unread: only that one matters, as
    /// HTTP/1 does not reuse a connection after an unread body that it could not drain.
    pub(crate) fn set(&self, unread: bool) {
        self.0.store(unread, Ordering::Relaxed);
    }

    fn armed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

enum State {
    Open,
    Draining {
        deadline: Pin<Box<Sleep>>,
        idle: Pin<Box<Sleep>>,
        left: u64,
    },
    Done,
}

/// A socket whose shutdown lingers when its [`LingerSwitch`] is armed.
pub(crate) struct Lingering<S> {
    inner: S,
    switch: LingerSwitch,
    limits: LingerLimits,
    state: State,
}

impl<S> Lingering<S> {
    pub(crate) fn new(inner: S, switch: LingerSwitch, limits: LingerLimits) -> Self {
        Self {
            inner,
            switch,
            limits,
            state: State::Open,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Lingering<S> {
    /// Discards what the client sends until it closes, the bounds are reached, or it fails.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let idle_limit = self.limits.idle;
        let State::Draining {
            deadline,
            idle,
            left,
        } = &mut self.state
        else {
            return Poll::Ready(());
        };
        let mut scratch = [0u8; 16 * 1024];
        loop {
            if deadline.as_mut().poll(cx).is_ready() || idle.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {
                    let n = buf.filled().len() as u64;
                    if n == 0 || n >= *left {
                        return Poll::Ready(());
                    }
                    *left -= n;
                    idle.as_mut().reset(Instant::now() + idle_limit);
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match this.state {
                State::Open => {
                    // Half-close first: the client reads our answer, then EOF.
                    ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
                    if !this.switch.armed() {
                        this.state = State::Done;
                        return Poll::Ready(Ok(()));
                    }
                    let now = Instant::now();
                    this.state = State::Draining {
                        deadline: Box::pin(tokio::time::sleep_until(now + this.limits.total)),
                        idle: Box::pin(tokio::time::sleep_until(now + this.limits.idle)),
                        left: this.limits.bytes,
                    };
                }
                State::Draining { .. } => {
                    ready!(this.poll_drain(cx));
                    this.state = State::Done;
                }
                State::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMITS: LingerLimits = LingerLimits {
        total: Duration::from_secs(30),
        idle: Duration::from_secs(30),
        bytes: 1 << 20,
    };

    #[tokio::test]
    async fn unarmed_shutdown_does_not_read() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut s = Lingering::new(server, LingerSwitch::default(), LIMITS);
        client.write_all(b"unread").await.unwrap();
        s.shutdown().await.unwrap();
        // The bytes are still there: nothing drained them.
        let mut buf = [0u8; 6];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"unread");
    }

    #[tokio::test]
    async fn armed_shutdown_drains_until_the_client_closes() {
        let (server, mut client) = tokio::io::duplex(1024);
        let switch = LingerSwitch::default();
        switch.set(true);
        let mut s = Lingering::new(server, switch, LIMITS);
        let writer = tokio::spawn(async move {
            // 64 KiB through a 1 KiB pipe: only possible if the server side keeps reading.
            client.write_all(&[b'x'; 64 * 1024]).await.unwrap();
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.unwrap();
            rest
        });
        s.shutdown().await.unwrap();
        // The client saw our half-close (EOF) after writing everything.
        assert!(writer.await.unwrap().is_empty());
    }

    /// `future` must finish well before the 30 s of [`LIMITS`]' timers.
    async fn before_the_timers<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(20), future)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn drain_stops_at_the_byte_bound() {
        let (server, mut client) = tokio::io::duplex(1024);
        let switch = LingerSwitch::default();
        switch.set(true);
        let limits = LingerLimits {
            bytes: 1000,
            ..LIMITS
        };
        let mut s = Lingering::new(server, switch, limits);
        let writer = tokio::spawn(async move { client.write_all(&[b'x'; 64 * 1024]).await });
        before_the_timers(s.shutdown()).await.unwrap();
        // The writer is still blocked: the rest was never read.
        assert!(!writer.is_finished());
    }

    #[tokio::test]
    async fn a_silent_client_is_dropped_after_the_idle_limit() {
        let (server, _client) = tokio::io::duplex(1024);
        let switch = LingerSwitch::default();
        switch.set(true);
        let limits = LingerLimits {
            idle: Duration::from_millis(50),
            ..LIMITS
        };
        let mut s = Lingering::new(server, switch, limits);
        before_the_timers(s.shutdown()).await.unwrap();
    }
}
