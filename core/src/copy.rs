//! Server-side copy above the single-request limit: UploadPartCopy of byte
//! ranges, `queue_size` at a time, then CompleteMultipartUpload. Any
//! failure aborts the upload, so no parts are left behind.

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use crate::backend::{copy_source, Inner};
use crate::classify::from_sdk;
use crate::error::{Error, Operation, Result};
use crate::upload::{multipart_etag, recover_completed, PutOptions, UploadOutcome};

/// S3 allows at most 10,000 parts.
const MAX_PARTS: u64 = 10_000;

pub(crate) async fn multipart_copy(
    inner: &Inner,
    from: &str,
    to: &str,
    size: u64,
    stored: &PutOptions,
    cancel: &CancellationToken,
) -> Result<UploadOutcome> {
    let ctx = || inner.ctx(Operation::Copy, to);
    let bucket = &inner.config.bucket;
    let created = inner
        .client
        .create_multipart_upload()
        .bucket(bucket)
        .key(to)
        .content_type(&stored.content_type)
        .set_metadata(Some(stored.metadata.clone()).filter(|m| !m.is_empty()))
        .send()
        .await
        .map_err(|e| from_sdk(ctx(), e))?;
    let upload_id = created.upload_id.unwrap_or_default();
    let result = tokio::select! {
        r = copy_parts(inner, from, to, size, &upload_id) => r,
        _ = cancel.cancelled() => Err(Error::Aborted { operation: Operation::Copy, key: to.to_owned() }),
    };
    match result {
        Ok(out) => Ok(out),
        Err(err) => {
            let _ = inner.client.abort_multipart_upload().bucket(bucket).key(to).upload_id(&upload_id).send().await;
            Err(err)
        }
    }
}

async fn copy_parts(inner: &Inner, from: &str, to: &str, size: u64, upload_id: &str) -> Result<UploadOutcome> {
    let bucket = &inner.config.bucket;
    let part_size = inner.config.multipart.copy_part_size.max(size.div_ceil(MAX_PARTS));
    let source = copy_source(bucket, from);
    let ranges: Vec<(i32, u64, u64)> = (0..size.div_ceil(part_size))
        .map(|i| (i as i32 + 1, i * part_size, ((i + 1) * part_size).min(size) - 1))
        .collect();
    let mut parts: Vec<CompletedPart> = stream::iter(ranges)
        .map(|(number, first, last)| {
            let request = inner
                .client
                .upload_part_copy()
                .bucket(bucket)
                .key(to)
                .upload_id(upload_id)
                .part_number(number)
                .copy_source(&source)
                .copy_source_range(format!("bytes={first}-{last}"))
                .customize()
                .config_override(inner.body_override())
                .send();
            async move {
                let out = request.await.map_err(|e| from_sdk(inner.ctx(Operation::Copy, to), e))?;
                let etag = out.copy_part_result.and_then(|r| r.e_tag);
                Ok::<_, Error>(CompletedPart::builder().part_number(number).set_e_tag(etag).build())
            }
        })
        .buffer_unordered(inner.config.multipart.queue_size)
        .try_collect()
        .await?;
    parts.sort_by_key(|p| p.part_number);
    let expected_etag = multipart_etag(&parts);
    let sent = inner
        .client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(to)
        .upload_id(upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .customize()
        .config_override(inner.body_override())
        .send()
        .await;
    match sent {
        Ok(out) => Ok(UploadOutcome { etag: out.e_tag }),
        // As for uploads: a lost or unreadable answer is checked by ETag.
        Err(e) => recover_completed(inner, to, expected_etag, from_sdk(inner.ctx(Operation::Copy, to), e)).await,
    }
}
