//! The body of responses leaving the cache: stored bytes, or the origin's stream.

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

/// An error from a body or an inner service, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response from [`CacheService`](crate::CacheService): the stored bytes of a
/// hit (no allocation beyond a reference count), or the origin's body streamed through.
pub struct CacheBody {
    kind: Kind,
}

enum Kind {
    Bytes(Option<Bytes>),
    Stream(UnsyncBoxBody<Bytes, BoxError>),
}

impl fmt::Debug for CacheBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Bytes(b) => {
                f.debug_tuple("CacheBody::Bytes").field(&b.as_ref().map(Bytes::len)).finish()
            }
            Kind::Stream(_) => f.write_str("CacheBody::Stream"),
        }
    }
}

impl CacheBody {
    /// A body of these bytes.
    pub fn full(bytes: Bytes) -> Self {
        CacheBody { kind: Kind::Bytes((!bytes.is_empty()).then_some(bytes)) }
    }

    /// An empty body.
    pub fn empty() -> Self {
        CacheBody { kind: Kind::Bytes(None) }
    }

    /// Streams another body through.
    pub fn stream<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        CacheBody { kind: Kind::Stream(body.map_err(Into::into).boxed_unsync()) }
    }
}

impl Default for CacheBody {
    fn default() -> Self {
        CacheBody::empty()
    }
}

impl Body for CacheBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Bytes(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(s) => Pin::new(s).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Bytes(b) => b.is_none(),
            Kind::Stream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Bytes(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream(s) => s.size_hint(),
        }
    }
}

/// Bytes already read, then the rest of a body.
struct Prefixed {
    head: Option<Bytes>,
    rest: UnsyncBoxBody<Bytes, BoxError>,
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(h) = this.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(h))));
        }
        Pin::new(&mut this.rest).poll_frame(cx)
    }
}

/// What reading a body up to a limit gave.
pub(crate) enum Collected {
    /// The whole body.
    Full(Bytes),
    /// It is larger than the limit: a body replaying what was read, then the rest.
    TooLarge(CacheBody),
    /// The body failed.
    Failed,
}

/// Reads `body` whole if it is at most `limit` bytes.
pub(crate) async fn collect<B>(body: B, limit: usize) -> Collected
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut body = body.map_err(Into::into).boxed_unsync();
    if body.size_hint().lower() > limit as u64 {
        return Collected::TooLarge(CacheBody { kind: Kind::Stream(body) });
    }
    let mut buf = BytesMut::new();
    loop {
        match body.frame().await {
            None => return Collected::Full(buf.freeze()),
            Some(Err(_)) => return Collected::Failed,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    if buf.len() > limit {
                        let head = Some(buf.freeze());
                        let rest = Prefixed { head, rest: body }.boxed_unsync();
                        return Collected::TooLarge(CacheBody { kind: Kind::Stream(rest) });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use std::collections::VecDeque;

    /// A body of chunks without a size hint, like a chunked origin response.
    struct Chunks(VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn small_bodies_are_collected_and_large_ones_replayed_whole() {
        block_on(async {
            let Collected::Full(b) = collect(Full::new(Bytes::from_static(b"abc")), 3).await else {
                panic!("fits")
            };
            assert_eq!(b, "abc");
            let body = Chunks((0..5).map(|i| Bytes::from(vec![b'a' + i; 4])).collect());
            let Collected::TooLarge(rest) = collect(body, 6).await else { panic!("too large") };
            let all = rest.collect().await.unwrap().to_bytes();
            assert_eq!(&all[..], b"aaaabbbbccccddddeeee");
            let sized = Full::new(Bytes::from_static(b"abcdefgh"));
            let Collected::TooLarge(rest) = collect(sized, 4).await else { panic!("by hint") };
            assert_eq!(rest.collect().await.unwrap().to_bytes(), "abcdefgh");
        });
    }
}
