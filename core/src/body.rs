//! Request bodies that hand bytes to hyper without copying them.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use crate::error::Error;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body made of chunks already in memory (one multipart part).
struct ChunksBody {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl Body for ChunksBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.chunks.pop_front() {
            Some(chunk) => {
                self.remaining -= chunk.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A retryable body over in-memory chunks: a retry replays the same `Bytes`.
pub(crate) fn chunks_stream(chunks: Vec<Bytes>) -> ByteStream {
    if let [single] = chunks.as_slice() {
        return ByteStream::from(single.clone());
    }
    let len: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    let chunks = Arc::new(chunks);
    ByteStream::new(SdkBody::retryable(move || {
        SdkBody::from_body_1_x(ChunksBody { chunks: chunks.iter().cloned().collect(), remaining: len })
    }))
}

/// Why a streaming body stopped early; read back after the request fails,
/// because the SDK only reports a generic I/O error.
pub(crate) type BodyFailure = Arc<Mutex<Option<Error>>>;

/// A body fed by the Node side through a channel, for a PutObject of
/// declared length. The chunk carrying the last byte is held back until the
/// sender is dropped (the source ended): hyper stops reading once the length
/// is met, so this is the only point where an extra byte or an abort can
/// still fail the request instead of storing a wrong object.
pub(crate) struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
    expected: u64,
    received: u64,
    held: Option<Bytes>,
    done: bool,
    failure: BodyFailure,
    /// Builds the error for a length mismatch: (bytes received, too long?).
    mismatch: Box<dyn Fn(u64, bool) -> Error + Send + Sync>,
    /// The abort error, if the upload was aborted.
    aborted: Box<dyn Fn() -> Option<Error> + Send + Sync>,
}

impl ChannelBody {
    pub(crate) fn new(
        rx: mpsc::Receiver<Bytes>,
        expected: u64,
        failure: BodyFailure,
        mismatch: impl Fn(u64, bool) -> Error + Send + Sync + 'static,
        aborted: impl Fn() -> Option<Error> + Send + Sync + 'static,
    ) -> Self {
        ChannelBody {
            rx,
            expected,
            received: 0,
            held: None,
            done: false,
            failure,
            mismatch: Box::new(mismatch),
            aborted: Box::new(aborted),
        }
    }

    fn fail(&mut self, err: Error) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let msg = err.to_string();
        self.failure.lock().expect("body failure lock").get_or_insert(err);
        self.done = true;
        self.held = None;
        self.rx.close();
        Poll::Ready(Some(Err(msg.into())))
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.expected == 0 && self.held.is_none() {
            // nothing to send: still wait for the source to end cleanly
            self.held = Some(Bytes::new());
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(chunk)) => {
                self.received += chunk.len() as u64;
                if self.received > self.expected {
                    let err = (self.mismatch)(self.received, true);
                    return self.fail(err);
                }
                if self.received < self.expected {
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                // the last byte: hold it until the source ends
                if !chunk.is_empty() || self.held.is_none() {
                    self.held = Some(chunk);
                }
                self.poll_frame(cx)
            }
            Poll::Ready(None) => {
                if let Some(err) = (self.aborted)() {
                    return self.fail(err);
                }
                if self.received != self.expected {
                    let err = (self.mismatch)(self.received, false);
                    return self.fail(err);
                }
                self.done = true;
                match self.held.take() {
                    Some(last) if !last.is_empty() => Poll::Ready(Some(Ok(Frame::data(last)))),
                    _ => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.held.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let sent = self.received - self.held.as_ref().map_or(0, |h| h.len() as u64);
        SizeHint::with_exact(self.expected - sent)
    }
}
