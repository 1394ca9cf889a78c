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
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::progress::Progress;

/// Frames handed to hyper at most this large, so progress is seen while a
/// large part is on the wire.
const MAX_FRAME: usize = 256 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body made of chunks already in memory (a Buffer, or one part).
struct ChunksBody {
    chunks: VecDeque<Bytes>,
    remaining: u64,
    progress: Progress,
    /// Once cancelled the body fails, so a request the engine gave up on
    /// (abort, stall) cannot still complete in hyper's connection task.
    cancel: CancellationToken,
}

impl Body for ChunksBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.cancel.is_cancelled() {
            self.chunks.clear();
            return Poll::Ready(Some(Err("upload cancelled".into())));
        }
        self.progress.tick();
        let Some(chunk) = self.chunks.front_mut() else {
            return Poll::Ready(None);
        };
        let frame = if chunk.len() > MAX_FRAME { chunk.split_to(MAX_FRAME) } else { self.chunks.pop_front().expect("front") };
        self.remaining -= frame.len() as u64;
        self.progress.advance(frame.len());
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A retryable body over in-memory chunks: a retry replays the same `Bytes`.
/// It is a streaming body, so it is sent as UNSIGNED-PAYLOAD (the signature
/// covers the headers; the body is not hashed twice, by client and server).
pub(crate) fn chunks_stream(chunks: Vec<Bytes>, progress: Progress, cancel: CancellationToken) -> ByteStream {
    let len: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    let chunks = Arc::new(chunks);
    ByteStream::new(SdkBody::retryable(move || {
        SdkBody::from_body_1_x(ChunksBody {
            chunks: chunks.iter().filter(|c| !c.is_empty()).cloned().collect(),
            remaining: len,
            progress: progress.clone(),
            cancel: cancel.clone(),
        })
    }))
}

/// Why a streaming body stopped early; read back after the request fails,
/// because the SDK only reports a generic I/O error.
pub(crate) type BodyFailure = Arc<Mutex<Option<Error>>>;

/// Where a [`ChannelBody`] that took no chunk puts its channel back when it
/// is dropped, so a request that failed before its first body byte can be
/// sent again with the whole body.
pub(crate) type Untouched = Arc<Mutex<Option<mpsc::Receiver<Bytes>>>>;

/// A body fed by the Node side through a channel, for a PutObject of
/// declared length. The chunk carrying the last byte is held back until the
/// sender is dropped (the source ended): hyper stops reading once the length
/// is met, so this is the only point where an extra byte or an abort can
/// still fail the request instead of storing a wrong object.
pub(crate) struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
    expected: u64,
    received: u64,
    /// The last chunk, held until the source ends.
    held: Option<Bytes>,
    /// What is left of a chunk being handed over in frames.
    pending: Option<Bytes>,
    /// The source ended cleanly (or the body failed).
    source_done: bool,
    failure: BodyFailure,
    progress: Progress,
    /// Builds the error for a length mismatch: (bytes received, too long?).
    mismatch: Box<dyn Fn(u64, bool) -> Error + Send + Sync>,
    /// The abort error, if the upload was aborted.
    aborted: Box<dyn Fn() -> Option<Error> + Send + Sync>,
    /// Gets the channel back if no chunk was taken from it.
    untouched: Untouched,
}

impl Drop for ChannelBody {
    fn drop(&mut self) {
        if self.received == 0 && !self.source_done {
            let (_, closed) = mpsc::channel(1);
            let rx = std::mem::replace(&mut self.rx, closed);
            *self.untouched.lock().expect("untouched lock") = Some(rx);
        }
    }
}

impl ChannelBody {
    #[allow(clippy::too_many_arguments)] // each is one part of the body's contract
    pub(crate) fn new(
        rx: mpsc::Receiver<Bytes>,
        expected: u64,
        failure: BodyFailure,
        progress: Progress,
        mismatch: impl Fn(u64, bool) -> Error + Send + Sync + 'static,
        aborted: impl Fn() -> Option<Error> + Send + Sync + 'static,
        untouched: Untouched,
    ) -> Self {
        ChannelBody {
            untouched,
            rx,
            expected,
            received: 0,
            held: None,
            pending: None,
            source_done: false,
            failure,
            progress,
            mismatch: Box::new(mismatch),
            aborted: Box::new(aborted),
        }
    }

    fn fail(&mut self, err: Error) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let msg = err.to_string();
        self.failure.lock().expect("body failure lock").get_or_insert(err);
        self.source_done = true;
        self.held = None;
        self.pending = None;
        self.rx.close();
        Poll::Ready(Some(Err(msg.into())))
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if !self.source_done {
            if let Some(err) = (self.aborted)() {
                return self.fail(err);
            }
        }
        loop {
            if let Some(rest) = self.pending.as_mut() {
                let frame = if rest.len() > MAX_FRAME { rest.split_to(MAX_FRAME) } else { self.pending.take().expect("pending") };
                self.progress.advance(frame.len());
                return Poll::Ready(Some(Ok(Frame::data(frame))));
            }
            if self.source_done {
                return Poll::Ready(None);
            }
            let polled = self.rx.poll_recv(cx);
            // Pending here means waiting for Node, not for the service.
            self.progress.pause(polled.is_pending());
            match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(chunk)) => {
                    self.received += chunk.len() as u64;
                    if self.received > self.expected {
                        let err = (self.mismatch)(self.received, true);
                        return self.fail(err);
                    }
                    if self.received < self.expected {
                        self.pending = Some(chunk).filter(|c| !c.is_empty());
                    } else if !chunk.is_empty() {
                        self.held = Some(chunk);
                    }
                }
                Poll::Ready(None) => {
                    if let Some(err) = (self.aborted)() {
                        return self.fail(err);
                    }
                    if self.received != self.expected {
                        let err = (self.mismatch)(self.received, false);
                        return self.fail(err);
                    }
                    self.source_done = true;
                    self.pending = self.held.take();
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.source_done && self.pending.is_none() && self.held.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let unsent = self.held.as_ref().map_or(0, |h| h.len() as u64) + self.pending.as_ref().map_or(0, |p| p.len() as u64);
        SizeHint::with_exact(self.expected - self.received + unsent)
    }
}
