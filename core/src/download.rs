//! A download in progress: the body of a GetObject, read in coalesced chunks
//! so Node sees few, large reads.

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::classify::error_chain;
use crate::error::{Error, Operation, Result};

/// An open download: its headers, and its body read on demand.
pub struct Download {
    key: String,
    body: Option<ByteStream>,
    /// An error met after some bytes were already gathered for the caller.
    pending: Option<Error>,
    closed: CancellationToken,
    /// The longest the service may take to send the next bytes asked for.
    idle: std::time::Duration,
    /// Bytes the body has, from the answer's headers.
    pub content_length: Option<u64>,
    /// `Content-Type` of the object.
    pub content_type: Option<String>,
    /// ETag of the object, quoted.
    pub etag: Option<String>,
}

impl Download {
    pub(crate) fn new(key: String, out: GetObjectOutput, idle: std::time::Duration, closed: CancellationToken) -> Self {
        Download {
            key,
            content_length: out.content_length.map(|n| n.max(0) as u64),
            content_type: out.content_type,
            etag: out.e_tag,
            body: Some(out.body),
            pending: None,
            idle,
            closed,
        }
    }

    /// A handle that closes the download from anywhere, even while a
    /// `read` is waiting for the network.
    pub fn closer(&self) -> DownloadCloser {
        DownloadCloser(self.closed.clone())
    }

    /// Up to about `max` bytes: waits for the first network chunk, then takes
    /// whatever else has already arrived. `None` at the end of the object,
    /// or once closed.
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
        result
    }

    async fn read_open(&mut self, max: usize) -> Result<Option<Vec<u8>>> {
        if let Some(err) = self.pending.take() {
            return Err(err);
        }
        let Some(body) = self.body.as_mut() else {
            return Ok(None);
        };
        let next = tokio::time::timeout(self.idle, body.try_next()).await;
        let Ok(next) = next else {
            self.body = None;
            return Err(Error::unavailable(
                Operation::Download,
                &self.key,
                format!("the service sent no data for {} ms", self.idle.as_millis()),
            ));
        };
        let first = match next {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                self.body = None;
                return Ok(None);
            }
            Err(e) => {
                self.body = None;
                return Err(self.broken(e));
            }
        };
        let mut out = Vec::with_capacity(first.len().max(max.min(first.len() * 4)));
        out.extend_from_slice(&first);
        while out.len() < max {
            match body.try_next().now_or_never() {
                Some(Ok(Some(chunk))) => out.extend_from_slice(&chunk),
                Some(Ok(None)) => {
                    self.body = None;
                    break;
                }
                Some(Err(e)) => {
                    self.body = None;
                    self.pending = Some(self.broken(e));
                    break;
                }
                None => break,
            }
        }
        Ok(Some(out))
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
        self.body = None;
    }

    fn broken(&self, e: aws_smithy_types::byte_stream::error::Error) -> Error {
        broken_connection(&self.key, &e)
    }
}

/// A download's body stopped mid-way: the connection broke (whole or in parallel parts).
pub(crate) fn broken_connection(key: &str, e: &(dyn std::error::Error + 'static)) -> Error {
    Error::unavailable(Operation::Download, key, format!("the connection broke while reading the object: {}", error_chain(e)))
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
