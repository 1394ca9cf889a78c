//! Parallel ranged downloads: after the first part, the rest of a large
//! object is fetched as `concurrency` ranged GETs at once and handed on in
//! order, so one slow connection does not cap the transfer. Memory stays
//! under (concurrency + 2) × PART_BYTES: parts in flight or done, one queued,
//! one being read.
//!
//! Every part is pinned with `If-Match` to the first answer's ETag. A part
//! whose body breaks (reset, cut, stall) keeps what it received and asks for
//! the rest, pinned the same way (resume.rs): at most `retry.maxAttempts`
//! GETs per part. Ranged answers carry no checksum, so the whole object's is
//! asked for with one HEAD (pinned too) while the parts come, and checked
//! over the bytes as they are handed on in order (download.rs).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::body::SdkBody;
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::checksum::Checksum;
use crate::download::Download;
use crate::error::{Error, Operation, Result};
use crate::request::{GetMode, S3Core};
use crate::resume::{broken_connection, Resumer};
use crate::types::{ByteRange, GetConditions};
use crate::verify;

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
    // Every later request from the version the first answer came from.
    let when = GetConditions { if_match: first.e_tag.clone(), version_id: version_id.clone(), pinned: true, ..Default::default() };
    let total = total_size(first.content_range.as_deref());
    let expected = expected_checksum(&core, key, &first, total.is_some_and(|t| t <= PART_BYTES), &when, &closed);
    let Some(total) = total.filter(|&t| t > PART_BYTES) else {
        if let Some(t) = total {
            first.content_length = Some(t as i64);
        }
        // The one part is the whole object: resumed like any download.
        return Download::new(key.to_owned(), first, Some(idle), closed).resumable(core, None, version_id).verified_later(expected);
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, Error>>(1);
    let first_body = std::mem::replace(&mut first.body, ByteStream::new(SdkBody::empty()));
    first.content_length = Some(total as i64);
    let task_key = key.to_owned();
    let stop = closed.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = feed(core, task_key, first_body, when, total, concurrency, idle, tx) => {}
            _ = stop.cancelled() => {}
        }
    });
    first.body = ByteStream::new(SdkBody::from_body_1_x(PartsBody { rx, remaining: total, current: Bytes::new() }));
    // Each part watches its own body for stalls.
    Download::new(key.to_owned(), first, None, closed).verified_later(expected)
}

/// The whole object's checksum: from a HEAD pinned like the parts (ranged
/// answers carry none, and a value on one that is not the whole object is
/// not trusted to be the object's), unless the first answer is the `whole`
/// object and had it. The HEAD runs while the parts come; a 412 there means
/// the object changed (the download fails), any other failure leaves the
/// download unverified.
fn expected_checksum(
    core: &Arc<S3Core>,
    key: &str,
    first: &GetObjectOutput,
    whole: bool,
    when: &GetConditions,
    closed: &CancellationToken,
) -> oneshot::Receiver<Result<Option<Checksum>>> {
    let (tx, rx) = oneshot::channel();
    if let Some(known) = verify::of_get(first).filter(|_| whole) {
        let _ = tx.send(Ok(Some(known)));
        return rx;
    }
    let (core, key, when, stop) = (core.clone(), key.to_owned(), when.clone(), closed.clone());
    tokio::spawn(async move {
        let head = tokio::select! {
            r = core.head_pinned(Operation::Download, &key, &when) => r,
            _ = stop.cancelled() => return,
        };
        let expected = match head {
            Ok(out) => Ok(verify::of_head(&out)),
            Err(e @ Error::PreconditionFailed { .. }) => Err(e),
            Err(_) => Ok(None),
        };
        let _ = tx.send(expected);
    });
    rx
}

/// Sends the parts in order; up to `concurrency` are fetched at once, the
/// first one (already answered) included. Each part is a task, aborted if
/// the download ends first.
#[allow(clippy::too_many_arguments)]
async fn feed(
    core: Arc<S3Core>,
    key: String,
    first: ByteStream,
    when: GetConditions,
    total: u64,
    concurrency: u32,
    idle: Duration,
    tx: mpsc::Sender<Result<Bytes, Error>>,
) {
    let part =
        |body: Option<ByteStream>, range: ByteRange| tokio::spawn(fetch_part(core.clone(), key.clone(), when.clone(), range, body, idle));
    let mut pending = InFlight(VecDeque::new());
    pending.0.push_back(part(Some(first), FIRST_PART));
    let mut next = 1u64;
    loop {
        while pending.0.len() < concurrency as usize && next * PART_BYTES < total {
            let start = next * PART_BYTES;
            let end = (start + PART_BYTES).min(total) - 1;
            pending.0.push_back(part(None, ByteRange { start, end: Some(end) }));
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

/// One part, whole: `body` is its answer when one came already (the first
/// part's). `If-Match` keeps every part from the same version of the
/// object; a body that breaks is resumed from its next byte.
async fn fetch_part(
    core: Arc<S3Core>,
    key: String,
    when: GetConditions,
    range: ByteRange,
    body: Option<ByteStream>,
    idle: Duration,
) -> Result<Bytes, Error> {
    let op = Operation::Download;
    let expected = range.end.unwrap_or(range.start) - range.start + 1;
    let mut body = match body {
        Some(body) => body,
        None => core.get_object(op, &key, Some(range), &when, GetMode::default()).await?.body,
    };
    let mut resumer = Resumer::new(core, &key, when.if_match.as_deref(), when.version_id.clone());
    let mut data = BytesMut::with_capacity(expected as usize);
    loop {
        let broke = match read_part(&key, &mut body, &mut data, expected, idle).await {
            Ok(()) => return Ok(data.freeze()),
            Err(broke) => broke,
        };
        // Only a broken body is resumed (read_part's other errors are final).
        let Some(resumer) = resumer.as_mut().filter(|_| matches!(broke, Error::Unavailable { .. })) else {
            return Err(broke);
        };
        let rest = ByteRange { start: range.start + data.len() as u64, end: range.end };
        body = resumer.resume(broke, rest, Some(expected - data.len() as u64)).await?;
    }
}

/// Reads `body` into `data` until the part has its `expected` bytes. A
/// broken body, a stall of `idle`, or an early end are `unavailable` errors
/// (`data` keeps what came); more bytes than expected cannot be mended.
async fn read_part(key: &str, body: &mut ByteStream, data: &mut BytesMut, expected: u64, idle: Duration) -> Result<()> {
    let op = Operation::Download;
    loop {
        let next = tokio::time::timeout(idle, body.try_next()).await;
        let chunk = match next {
            Err(_) => return Err(Error::unavailable(op, key, format!("the service sent no data for {} ms", idle.as_millis()))),
            Ok(Err(e)) => return Err(broken_connection(key, &e)),
            Ok(Ok(None)) if data.len() as u64 == expected => return Ok(()),
            Ok(Ok(None)) => {
                let detail =
                    format!("the connection broke while reading the object: a part ended {} bytes early", expected - data.len() as u64);
                return Err(Error::unavailable(op, key, detail));
            }
            Ok(Ok(Some(chunk))) => chunk,
        };
        if data.len() as u64 + chunk.len() as u64 > expected {
            let got = data.len() as u64 + chunk.len() as u64;
            return Err(Error::unknown(op, key, format!("a part of {expected} bytes came with at least {got}")));
        }
        data.extend_from_slice(&chunk);
    }
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
