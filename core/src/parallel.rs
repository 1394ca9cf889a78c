//! Parallel ranged downloads: after the first part, the rest of a large
//! object is fetched as `concurrency` ranged GETs at once and handed on in
//! order, so one slow connection does not cap the transfer. Memory stays
//! under (concurrency + 2) × PART_BYTES: parts in flight or done, one queued,
//! one being read.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::download::{broken_connection, Download};
use crate::error::{Error, Operation};
use crate::request::S3Core;
use crate::types::{ByteRange, GetConditions};

/// Bytes per ranged GET.
pub(crate) const PART_BYTES: u64 = 8 * 1024 * 1024;

/// The first request of a parallel download: the first part only. Its
/// Content-Range tells the size, and the rest follows in parts.
pub(crate) const FIRST_PART: ByteRange = ByteRange { start: 0, end: Some(PART_BYTES - 1) };

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The object size from `Content-Range: bytes 0-8388607/268435456`.
fn total_size(content_range: Option<&str>) -> Option<u64> {
    content_range?.rsplit_once('/')?.1.parse().ok()
}

/// `first` answered a GET of the first part. Objects no larger than that
/// part are plain downloads; larger ones continue in parallel parts.
pub(crate) fn download(
    core: Arc<S3Core>,
    key: &str,
    mut first: GetObjectOutput,
    version_id: Option<String>,
    concurrency: u32,
    idle: Duration,
    closed: CancellationToken,
) -> Download {
    let total = total_size(first.content_range.as_deref());
    let Some(total) = total.filter(|&t| t > PART_BYTES) else {
        if let Some(t) = total {
            first.content_length = Some(t as i64);
        }
        return Download::new(key.to_owned(), first, idle, closed);
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, Error>>(1);
    let first_body = std::mem::replace(&mut first.body, ByteStream::new(SdkBody::empty()));
    // Every later part from the version the first answer came from.
    let when = GetConditions { if_match: first.e_tag.clone(), version_id, pinned: true, ..Default::default() };
    first.content_length = Some(total as i64);
    let task_key = key.to_owned();
    let stop = closed.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = feed(core, task_key, first_body, when, total, concurrency, tx) => {}
            _ = stop.cancelled() => {}
        }
    });
    first.body = ByteStream::new(SdkBody::from_body_1_x(PartsBody { rx, remaining: total, current: Bytes::new() }));
    Download::new(key.to_owned(), first, idle, closed)
}

/// Sends the parts in order; up to `concurrency` are fetched at once, the
/// first one (already answered) included. Each part is a task, aborted if
/// the download ends first.
async fn feed(
    core: Arc<S3Core>,
    key: String,
    first: ByteStream,
    when: GetConditions,
    total: u64,
    concurrency: u32,
    tx: mpsc::Sender<Result<Bytes, Error>>,
) {
    let first_key = key.clone();
    let mut pending = InFlight(VecDeque::new());
    pending.0.push_back(tokio::spawn(async move { collect(&first_key, first, PART_BYTES).await }));
    let mut next = 1u64;
    loop {
        while pending.0.len() < concurrency as usize && next * PART_BYTES < total {
            let start = next * PART_BYTES;
            let end = (start + PART_BYTES).min(total) - 1;
            pending.0.push_back(tokio::spawn(fetch(core.clone(), key.clone(), when.clone(), ByteRange { start, end: Some(end) })));
            next += 1;
        }
        let Some(task) = pending.0.front_mut() else {
            return;
        };
        let part = task.await.unwrap_or_else(|e| Err(Error::unknown(Operation::Download, &key, format!("part task failed: {e}"))));
        pending.0.pop_front();
        let failed = part.is_err();
        if tx.send(part).await.is_err() || failed {
            return;
        }
    }
}

/// Part tasks still running; aborted when dropped (download closed or failed).
struct InFlight(VecDeque<JoinHandle<Result<Bytes, Error>>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// A part's body, whole, checked against its expected length.
async fn collect(key: &str, body: ByteStream, expected: u64) -> Result<Bytes, Error> {
    let op = Operation::Download;
    let data = body.collect().await.map_err(|e| broken_connection(key, &e))?;
    let bytes = data.into_bytes();
    if bytes.len() as u64 != expected {
        return Err(Error::unavailable(op, key, format!("a part of {expected} bytes came with {}", bytes.len())));
    }
    Ok(bytes)
}

/// One part, whole. `If-Match` keeps every part from the same version of the object.
async fn fetch(core: Arc<S3Core>, key: String, when: GetConditions, range: ByteRange) -> Result<Bytes, Error> {
    let out = core.get_object(Operation::Download, &key, Some(range), &when).await?;
    collect(&key, out.body, range.end.unwrap_or(range.start) - range.start + 1).await
}

/// The parts, in order, as an HTTP body for [`Download`].
struct PartsBody {
    rx: mpsc::Receiver<Result<Bytes, Error>>,
    remaining: u64,
    /// The rest of the current part, handed on in frames of at most
    /// FRAME_BYTES (slices, no copy), so Node gets buffers of a usual size.
    current: Bytes,
}

const FRAME_BYTES: usize = 1024 * 1024;

impl Body for PartsBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if !self.current.is_empty() {
            let n = self.current.len().min(FRAME_BYTES);
            let frame = self.current.split_to(n);
            self.remaining = self.remaining.saturating_sub(n as u64);
            return Poll::Ready(Some(Ok(Frame::data(frame))));
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) if self.remaining == 0 => Poll::Ready(None),
            Poll::Ready(None) => Poll::Ready(Some(Err("the download stopped early".into()))),
            Poll::Ready(Some(Ok(mut bytes))) => {
                let frame = bytes.split_to(bytes.len().min(FRAME_BYTES));
                self.current = bytes;
                self.remaining = self.remaining.saturating_sub(frame.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(frame))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_from_content_range() {
        assert_eq!(total_size(Some("bytes 0-8388607/268435456")), Some(268_435_456));
        assert_eq!(total_size(Some("bytes 0-9/*")), None);
        assert_eq!(total_size(None), None);
    }
}
