//! Server-side copy, any size: one CopyObject up to the copy threshold
//! (5 GiB, S3's limit), UploadPartCopy byte ranges through the one
//! multipart implementation above it.

use std::future::Future;
use std::sync::Arc;

use aws_sdk_s3::types::CompletedPart;
use tokio_util::sync::CancellationToken;

use crate::error::{Operation, Result};
use crate::multipart::{self, PartSource, MAX_PARTS};
use crate::request::{until_cancelled, S3Core, Transfer};
use crate::types::{ByteRange, ObjectInfo, PutOptions, UploadOutcome};

/// Copies `from` (described by `source`) to `to`, storing `stored` with it;
/// `replace`: `stored` differs from what the source has.
pub(crate) async fn copy(
    core: &Arc<S3Core>,
    from: &str,
    to: &str,
    source: &ObjectInfo,
    stored: &PutOptions,
    replace: bool,
    signal: &CancellationToken,
) -> Result<UploadOutcome> {
    if source.size <= core.config().multipart.copy_threshold {
        let replace = replace.then_some(stored);
        return until_cancelled(Operation::Copy, to, signal, core.copy_object(from, to, replace, stored.encryption.as_ref())).await;
    }
    let part_size = core.config().multipart.copy_part_size.max(source.size.div_ceil(MAX_PARTS as u64));
    let mut ranges = Ranges { from: from.into(), size: source.size, part_size, next: 0 };
    let t = Arc::new(Transfer::new(Operation::Copy, to.to_owned(), signal, None).with_encryption(stored.encryption.clone()));
    let first = ranges.take().expect("a copy above the threshold has parts");
    multipart::run(core, &t, stored, first, ranges).await
}

/// The byte ranges of a multipart copy, in order.
struct Ranges {
    from: Arc<str>,
    size: u64,
    part_size: u64,
    /// First byte of the next range.
    next: u64,
}

impl Ranges {
    fn take(&mut self) -> Option<(Arc<str>, ByteRange)> {
        if self.next >= self.size {
            return None;
        }
        let start = self.next;
        self.next = (start + self.part_size).min(self.size);
        Some((self.from.clone(), ByteRange { start, end: Some(self.next - 1) }))
    }
}

impl PartSource for Ranges {
    type Part = (Arc<str>, ByteRange);

    fn next(&mut self, _stop: &CancellationToken) -> impl Future<Output = Result<Option<Self::Part>>> + Send {
        std::future::ready(Ok(self.take()))
    }

    async fn send(core: Arc<S3Core>, t: Arc<Transfer>, upload_id: Arc<str>, number: i32, part: Self::Part) -> Result<CompletedPart> {
        core.upload_part_copy(&t, &part.0, &upload_id, number, part.1).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_object_once_in_order() {
        let mut r = Ranges { from: "a".into(), size: 10, part_size: 4, next: 0 };
        let got: Vec<ByteRange> = std::iter::from_fn(|| r.take()).map(|p| p.1).collect();
        assert_eq!(got, [ByteRange { start: 0, end: Some(3) }, ByteRange { start: 4, end: Some(7) }, ByteRange { start: 8, end: Some(9) }]);
    }
}
