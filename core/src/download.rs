//! A download in progress: the body of a GetObject, read in coalesced chunks
//! so Node sees few, large reads. A body that breaks mid-way is resumed from
//! the next byte (resume.rs), so the caller sees one stream with every byte
//! once; a full-object checksum is verified across the resumed answers
//! (verify.rs), and a mismatch ends the stream with an error, never a clean
//! end.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use futures_util::FutureExt;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::checksum::Checksum;
use crate::error::{Error, Operation, Result};
use crate::request::S3Core;
use crate::resume::{broken_connection, Resumer};
use crate::types::ByteRange;
use crate::verify::Verifier;

/// Where the body stands.
enum Body {
    /// Streaming.
    Open(ByteStream),
    /// Broke with this error: the next read resumes, or fails with it.
    Broken(Error),
    /// The answer's body ended: its length and checksum are checked next.
    Ended,
    /// Nothing more: ended and checked, failed, or closed.
    Done,
}

/// The checksum the bytes must have.
enum Verify {
    Off,
    /// The expected value is still on its way (a parallel download's HEAD);
    /// an error (the object changed) fails the download.
    Pending(oneshot::Receiver<Result<Option<Checksum>>>),
    On(Verifier),
}

/// How a broken body goes on.
struct Resume {
    resumer: Resumer,
    /// Offset of the download's first byte in the object.
    start: u64,
    /// Its last byte (inclusive), when the caller's range had one.
    end: Option<u64>,
}

/// An open download: its headers, and its body read on demand.
pub struct Download {
    key: String,
    body: Body,
    closed: CancellationToken,
    /// The longest the service may take to send the next bytes asked for
    /// (`None`: the body watches itself, as parallel parts do).
    idle: Option<Duration>,
    resume: Option<Resume>,
    verify: Verify,
    /// Bytes handed on so far.
    delivered: u64,
    /// Bytes the body has, from the answer's headers.
    pub content_length: Option<u64>,
    /// `Content-Type` of the object.
    pub content_type: Option<String>,
    /// ETag of the object, quoted.
    pub etag: Option<String>,
}

impl Download {
    pub(crate) fn new(key: String, out: GetObjectOutput, idle: Option<Duration>, closed: CancellationToken) -> Self {
        Download {
            key,
            content_length: out.content_length.map(|n| n.max(0) as u64),
            content_type: out.content_type,
            etag: out.e_tag,
            body: Body::Open(out.body),
            resume: None,
            verify: Verify::Off,
            delivered: 0,
            idle,
            closed,
        }
    }

    /// Resumes a broken body, pinned to this answer's ETag and the caller's
    /// `version_id`; `range` is the one asked for (`None`: the whole
    /// object). Needs an ETag and a known length.
    pub(crate) fn resumable(mut self, core: Arc<S3Core>, range: Option<ByteRange>, version_id: Option<String>) -> Self {
        if self.content_length.is_some() {
            self.resume = Resumer::new(core, &self.key, self.etag.as_deref(), version_id).map(|resumer| Resume {
                resumer,
                start: range.map_or(0, |r| r.start),
                end: range.and_then(|r| r.end),
            });
        }
        self
    }

    /// Verifies the bytes against `expected`, the whole object's checksum.
    pub(crate) fn verified(mut self, expected: Option<Checksum>) -> Self {
        self.verify = expected.map_or(Verify::Off, |e| Verify::On(Verifier::new(e)));
        self
    }

    /// Verifies the bytes against a checksum still being fetched; its
    /// answer comes before the first byte is handed on.
    pub(crate) fn verified_later(mut self, expected: oneshot::Receiver<Result<Option<Checksum>>>) -> Self {
        self.verify = Verify::Pending(expected);
        self
    }

    /// A handle that closes the download from anywhere, even while a
    /// `read` is waiting for the network.
    pub fn closer(&self) -> DownloadCloser {
        DownloadCloser(self.closed.clone())
    }

    /// Up to about `max` bytes: waits for the first network chunk, then takes
    /// whatever else has already arrived. `None` at the end of the object,
    /// or once closed. A resume in progress stops at once when closed.
    pub async fn read(&mut self, max: usize) -> Result<Option<Vec<u8>>> {
        let closed = self.closed.clone();
        let result = tokio::select! {
            r = self.read_open(max) => r,
            _ = closed.cancelled() => Ok(None),
        };
        if self.closed.is_cancelled() {
            self.close();
            return Ok(None);
        }
        if result.is_err() {
            self.body = Body::Done;
        }
        result
    }

    async fn read_open(&mut self, max: usize) -> Result<Option<Vec<u8>>> {
        if let Verify::Pending(expected) = &mut self.verify {
            // A lost sender (the task was cancelled): no value to check.
            let expected = expected.await.unwrap_or(Ok(None))?;
            self.verify = expected.map_or(Verify::Off, |e| Verify::On(Verifier::new(e)));
        }
        loop {
            match std::mem::replace(&mut self.body, Body::Done) {
                Body::Done => return Ok(None),
                Body::Open(stream) => {
                    self.body = Body::Open(stream);
                    if let Some(chunk) = self.read_chunks(max).await {
                        return Ok(Some(chunk));
                    }
                }
                Body::Broken(err) => {
                    let stream = self.resume_after(err).await?;
                    self.body = Body::Open(stream);
                }
                Body::Ended => {
                    if let Some(left) = self.content_length.map(|n| n.saturating_sub(self.delivered)).filter(|&n| n > 0) {
                        let detail = format!("the connection broke while reading the object: the body ended {left} bytes early");
                        self.body = Body::Broken(Error::unavailable(Operation::Download, &self.key, detail));
                        continue;
                    }
                    if let Verify::On(verifier) = std::mem::replace(&mut self.verify, Verify::Off) {
                        verifier.finish(&self.key)?;
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// The next bytes of an open body; `None` when it ended or broke
    /// instead (the body says which).
    async fn read_chunks(&mut self, max: usize) -> Option<Vec<u8>> {
        let Body::Open(body) = &mut self.body else {
            return None;
        };
        let next = match self.idle {
            Some(idle) => tokio::time::timeout(idle, body.try_next()).await.ok(),
            None => Some(body.try_next().await),
        };
        let first = match next {
            None => {
                let detail = format!("the service sent no data for {} ms", self.idle.unwrap_or_default().as_millis());
                self.body = Body::Broken(Error::unavailable(Operation::Download, &self.key, detail));
                return None;
            }
            Some(Ok(Some(chunk))) => chunk,
            Some(Ok(None)) => {
                self.body = Body::Ended;
                return None;
            }
            Some(Err(e)) => {
                self.body = Body::Broken(broken_connection(&self.key, &e));
                return None;
            }
        };
        let mut out = Vec::with_capacity(first.len().max(max.min(first.len() * 4)));
        out.extend_from_slice(&first);
        let mut after = None;
        while out.len() < max {
            match body.try_next().now_or_never() {
                Some(Ok(Some(chunk))) => out.extend_from_slice(&chunk),
                Some(Ok(None)) => {
                    after = Some(Body::Ended);
                    break;
                }
                Some(Err(e)) => {
                    after = Some(Body::Broken(broken_connection(&self.key, &e)));
                    break;
                }
                None => break,
            }
        }
        if let Some(after) = after {
            self.body = after;
        }
        self.delivered += out.len() as u64;
        if let Verify::On(verifier) = &mut self.verify {
            verifier.update(&out);
        }
        Some(out)
    }

    /// The rest of the body after `err` broke it, or `err` when it cannot
    /// be resumed.
    async fn resume_after(&mut self, err: Error) -> Result<ByteStream> {
        let Some(resume) = self.resume.as_mut() else {
            return Err(err);
        };
        let rest = ByteRange { start: resume.start + self.delivered, end: resume.end };
        let len = self.content_length.map(|n| n.saturating_sub(self.delivered));
        resume.resumer.resume(err, rest, len).await
    }

    /// The whole body when it is at most `limit` bytes (by its length
    /// header), read now; `None` for larger bodies, which stay streamed.
    /// Small objects then cost Node one call instead of three.
    pub async fn read_small(&mut self, limit: u64) -> Result<Option<Vec<u8>>> {
        let Some(len) = self.content_length.filter(|&n| n <= limit) else {
            return Ok(None);
        };
        let mut all = Vec::with_capacity(len as usize);
        while let Some(chunk) = self.read(limit as usize + 1).await? {
            all.extend_from_slice(&chunk);
        }
        Ok(Some(all))
    }

    /// Drops the body, which closes its connection instead of draining it.
    pub fn close(&mut self) {
        self.closed.cancel();
        self.body = Body::Done;
    }
}

/// Closes a [`Download`] without holding it.
#[derive(Clone)]
pub struct DownloadCloser(CancellationToken);

impl DownloadCloser {
    /// Closes the download: a pending read ends with `None`.
    pub fn close(&self) {
        self.0.cancel();
    }
}
