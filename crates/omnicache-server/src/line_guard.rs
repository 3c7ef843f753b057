//! A request line too long for HTTP/1 gets the API's JSON error, not hyper's bodyless 414.
//!
//! hyper refuses a request URI over 65,534 bytes before any handler runs, answering 414 with an
//! empty body (the limit is a constant in hyper). [`LineGuard`] watches the first request line of
//! each connection and, once it passes [`MAX_LINE`] bytes without ending, answers itself with the
//! error body every other refusal has (`uri_too_long`), reads and drops what the client is still
//! sending (so the client reads the answer instead of a reset), and closes.
//!
//! Later requests on a kept-alive connection still meet hyper's own 414: finding where they start
//! would mean following HTTP/1 framing (lengths, chunking) a second time, here.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest first request line passed on: no URI in it can exceed hyper's limit.
pub(crate) const MAX_LINE: usize = 65_534;
/// How much of a refused request is read and dropped before closing regardless.
const MAX_DRAIN: usize = 1 << 20;
/// How long a refused request's remaining bytes are waited for before closing regardless, so a
/// client that stops sending cannot hold the connection.
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// The answer to a request line over [`MAX_LINE`].
static REPLY: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(reply);

fn reply() -> Vec<u8> {
    let body = format!(
        "{{\"error\":{{\"code\":\"uri_too_long\",\"message\":\"the request line is longer than \
         {MAX_LINE} bytes, the HTTP limit; keys are limited to the server's max_key_len \
         characters\"}}}}"
    );
    format!(
        "HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[derive(Debug)]
enum State {
    /// In the first request line, this many bytes into it.
    Watching(usize),
    /// The first line ended in time: everything passes.
    Passing,
    /// The line was too long: writing the answer, this many bytes of it sent.
    Answering(usize),
    /// Answered: dropping what the client still sends, this much so far, until the deadline.
    Draining(usize, Pin<Box<tokio::time::Sleep>>),
    /// Done; reads fail so the HTTP layer drops the connection without writing.
    Closed,
}

/// A connection whose first request line is checked against [`MAX_LINE`].
#[derive(Debug)]
pub(crate) struct LineGuard<Io> {
    io: Io,
    state: State,
}

impl<Io> LineGuard<Io> {
    pub(crate) fn new(io: Io) -> Self {
        LineGuard { io, state: State::Watching(0) }
    }
}

impl<Io: AsyncRead + AsyncWrite + Unpin> AsyncRead for LineGuard<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Passing => return Pin::new(&mut this.io).poll_read(cx, buf),
                State::Watching(seen) => {
                    let seen = *seen;
                    let before = buf.filled().len();
                    ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
                    let new = &buf.filled()[before..];
                    let end = new.iter().position(|&b| b == b'\n');
                    let line = seen + end.unwrap_or(new.len());
                    if line > MAX_LINE {
                        // Nothing of the refused request reaches the HTTP layer.
                        buf.set_filled(before);
                        this.state = State::Answering(0);
                        continue;
                    }
                    if end.is_some() {
                        this.state = State::Passing;
                    } else {
                        this.state = State::Watching(line);
                    }
                    return Poll::Ready(Ok(()));
                }
                State::Answering(sent) => {
                    let sent = *sent;
                    let answer = &*REPLY;
                    if sent < answer.len() {
                        let n = ready!(Pin::new(&mut this.io).poll_write(cx, &answer[sent..]))?;
                        if n == 0 {
                            this.state = State::Closed;
                        } else {
                            this.state = State::Answering(sent + n);
                        }
                        continue;
                    }
                    ready!(Pin::new(&mut this.io).poll_flush(cx))?;
                    ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
                    this.state = State::Draining(0, Box::pin(tokio::time::sleep(DRAIN_FOR)));
                }
                State::Draining(drained, deadline) => {
                    if deadline.as_mut().poll(cx).is_ready() {
                        this.state = State::Closed;
                        continue;
                    }
                    let mut scratch = [0u8; 8192];
                    let mut sink = ReadBuf::new(&mut scratch);
                    ready!(Pin::new(&mut this.io).poll_read(cx, &mut sink))?;
                    let n = sink.filled().len();
                    *drained += n;
                    if n == 0 || *drained > MAX_DRAIN {
                        this.state = State::Closed;
                    }
                }
                State::Closed => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "request line too long (answered 414)",
                    )))
                }
            }
        }
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for LineGuard<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A listener whose connections are [`LineGuard`]ed.
#[derive(Debug)]
pub(crate) struct Guarded<L>(pub(crate) L);

impl<L> axum::serve::Listener for Guarded<L>
where
    L: axum::serve::Listener,
    L::Io: Unpin,
{
    type Io = LineGuard<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.0.accept().await;
        (LineGuard::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// What the HTTP layer reads through the guard, and what the client reads back.
    async fn through(request: Vec<u8>) -> (Vec<u8>, Vec<u8>, bool) {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let writer = tokio::spawn(async move {
            let _ = client_write.write_all(&request).await;
            let _ = client_write.shutdown().await;
        });
        let mut guard = LineGuard::new(server);
        let mut seen = Vec::new();
        let failed = guard.read_to_end(&mut seen).await.is_err();
        drop(guard);
        let mut answer = Vec::new();
        client_read.read_to_end(&mut answer).await.unwrap();
        writer.await.unwrap();
        (seen, answer, failed)
    }

    #[tokio::test]
    async fn a_line_within_the_limit_passes_untouched() {
        let mut req =
            format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "k".repeat(MAX_LINE - 20)).into_bytes();
        // A body with long runs and no newline after the first line is not the guard's business.
        req.extend(vec![b'v'; 3 * MAX_LINE]);
        let (seen, answer, failed) = through(req.clone()).await;
        assert_eq!(seen, req);
        assert!(answer.is_empty() && !failed);
    }

    #[tokio::test]
    async fn a_line_past_the_limit_gets_the_json_error_and_nothing_reaches_http() {
        let req = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "k".repeat(100_000)).into_bytes();
        let (seen, answer, failed) = through(req).await;
        assert!(failed, "the HTTP layer sees the connection fail, so it writes nothing");
        assert!(seen.len() <= MAX_LINE, "only bytes within the limit passed: {}", seen.len());
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "uri_too_long");
        assert!(answer.contains(&format!("content-length: {}\r\n", body.len())));
    }

    #[tokio::test]
    async fn the_limit_is_exact() {
        let line = |n: usize| {
            let mut r = vec![b'a'; n];
            r.extend_from_slice(b"\nrest");
            r
        };
        let (_, answer, failed) = through(line(MAX_LINE)).await;
        assert!(answer.is_empty() && !failed);
        let (_, answer, failed) = through(line(MAX_LINE + 1)).await;
        assert!(!answer.is_empty() && failed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_sending_is_closed_after_the_drain_deadline() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let mut request = b"GET /".to_vec();
        request.extend(vec![b'k'; MAX_LINE + 10]);
        // Writes a line too long, then neither sends more nor closes.
        let writer = tokio::spawn(async move {
            client_write.write_all(&request).await.unwrap();
            std::future::pending::<()>().await;
        });
        let mut guard = LineGuard::new(server);
        let mut seen = Vec::new();
        assert!(guard.read_to_end(&mut seen).await.is_err(), "closed, not held open");
        drop(guard);
        let mut answer = Vec::new();
        client_read.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 414"));
        writer.abort();
    }
}
