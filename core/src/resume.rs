//! Resuming a download body that broke mid-way (reset, cut, unexpected end,
//! stall): the rest is asked for from the next byte with `Range`, pinned
//! with `If-Match` to the first answer's ETag (and the caller's version), as
//! object_store does. Used by whole and ranged downloads (download.rs) and
//! by each part of a parallel one (parallel.rs).
//!
//! The bound: one body (a download, or one part of a parallel download) is
//! fetched with at most `retry.maxAttempts` GETs once its first answer came,
//! the breaks of that body sharing them. Each resumed GET is one HTTP
//! attempt (the SDK does not retry it; a failure before the answer counts
//! too), after the configured backoff. So a download makes at most
//! `maxAttempts − 1` extra GETs, whatever the network does.

use std::sync::Arc;

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;

use crate::classify::error_chain;
use crate::config::RetryConfig;
use crate::error::{Error, Operation, Result, ServiceInfo};
use crate::request::{GetMode, S3Core};
use crate::retry::backoff;
use crate::types::{ByteRange, GetConditions};

/// A download's body stopped mid-way: the connection broke (whole or in parallel parts).
pub(crate) fn broken_connection(key: &str, e: &(dyn std::error::Error + 'static)) -> Error {
    Error::unavailable(Operation::Download, key, format!("the connection broke while reading the object: {}", error_chain(e)))
}

/// What it takes to ask for the rest of one body again.
pub(crate) struct Resumer {
    core: Arc<S3Core>,
    key: String,
    /// `If-Match` on the first answer's ETag, the caller's version.
    when: GetConditions,
    retry: RetryConfig,
    /// GETs of this body so far, the first included.
    gets: u32,
}

impl Resumer {
    /// For a body whose first answer carried `etag`; `None` without one
    /// (nothing to pin the rest to, so a break ends the download).
    pub(crate) fn new(core: Arc<S3Core>, key: &str, etag: Option<&str>, version_id: Option<String>) -> Option<Self> {
        let when = GetConditions { if_match: Some(etag?.to_owned()), version_id, pinned: true, ..Default::default() };
        let retry = core.config().retry;
        Some(Resumer { core, key: key.to_owned(), when, retry, gets: 1 })
    }

    /// After `broke` stopped the body: GETs bytes `rest` (from the next byte
    /// needed; `len` of them when known) until an answer comes, and returns
    /// its body. Fails with `broke` (or the last failure) once the GETs are
    /// spent, with `precondition_failed` when the object changed, and at
    /// once on any other error. Cancelled by dropping the future.
    pub(crate) async fn resume(&mut self, broke: Error, rest: ByteRange, len: Option<u64>) -> Result<ByteStream> {
        let mut last = broke;
        loop {
            if self.gets >= self.retry.max_attempts {
                return Err(gave_up(last, self.gets));
            }
            tokio::time::sleep(backoff(&self.retry, self.gets)).await;
            self.gets += 1;
            let mode = GetMode { once: true, ..Default::default() };
            match self.core.get_object(Operation::Download, &self.key, Some(rest), &self.when, mode).await {
                Ok(out) => return self.check(out, rest, len),
                Err(e @ Error::Unavailable { .. }) => last = e,
                Err(e) => return Err(changed(e)),
            }
        }
    }

    /// The answer must be the bytes asked for: a server that ignored the
    /// Range would repeat bytes already handed on.
    fn check(&self, out: GetObjectOutput, rest: ByteRange, len: Option<u64>) -> Result<ByteStream> {
        let start = out.content_range.as_deref().and_then(range_start);
        let length = out.content_length.map(|n| n.max(0) as u64);
        if start != Some(rest.start) || (len.is_some() && length != len) {
            let detail = format!(
                "a resumed GET of bytes {} came with other bytes (Content-Range {}, Content-Length {})",
                rest.header().trim_start_matches("bytes="),
                out.content_range.as_deref().unwrap_or("absent"),
                length.map_or("absent".to_owned(), |n| n.to_string()),
            );
            return Err(Error::unknown(Operation::Download, &self.key, detail));
        }
        Ok(out.body)
    }
}

/// The first byte of `Content-Range: bytes 100-199/1000`.
fn range_start(content_range: &str) -> Option<u64> {
    content_range.trim().strip_prefix("bytes ")?.split_once('-')?.0.trim().parse().ok()
}

/// A failure of a resumed GET: the object is gone, or shorter than the
/// bytes already handed on, means it changed during the download.
fn changed(e: Error) -> Error {
    let detail = match &e {
        Error::NotFound { .. } => "the object changed during the download (it was deleted)",
        Error::InvalidArgument { field, .. } if field == "range" => "the object changed during the download (it is shorter now)",
        _ => return e,
    };
    let (operation, key) = (e.operation(), e.key().to_owned());
    Error::PreconditionFailed { operation, key, info: ServiceInfo::detail(detail) }
}

/// The last failure of a body that used up its GETs, saying so.
fn gave_up(e: Error, gets: u32) -> Error {
    match e {
        Error::Unavailable { operation, key, mut info } if gets > 1 => {
            info.detail = format!("{}; gave up after {gets} GETs of the object", info.detail);
            Error::Unavailable { operation, key, info }
        }
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_start() {
        assert_eq!(range_start("bytes 1048576-6291455/6291456"), Some(1_048_576));
        assert_eq!(range_start("bytes 0-0/1"), Some(0));
        assert_eq!(range_start("bytes */1000"), None);
        assert_eq!(range_start(""), None);
    }

    #[test]
    fn a_missing_or_shorter_object_changed() {
        let gone = changed(Error::not_found(Operation::Download, "k", "b"));
        assert_eq!(gone.reason(), "precondition_failed");
        assert!(gone.to_string().contains("the object changed during the download"), "{gone}");
        let shorter = changed(Error::invalid(Operation::Download, "k", "range", "starts at byte 9"));
        assert_eq!(shorter.reason(), "precondition_failed");
        assert_eq!(changed(Error::invalid(Operation::Download, "k", "request", "x")).reason(), "invalid_argument");
    }

    #[test]
    fn giving_up_counts_the_gets() {
        let e = gave_up(Error::unavailable(Operation::Download, "k", "the connection broke"), 3);
        assert!(e.to_string().ends_with("(the connection broke; gave up after 3 GETs of the object)"), "{e}");
        let once = gave_up(Error::unavailable(Operation::Download, "k", "the connection broke"), 1);
        assert!(!once.to_string().contains("gave up"), "{once}");
    }
}
