//! The upload engine: one PutObject for small or declared-length bodies,
//! concurrent multipart otherwise, with memory bounded by
//! `part_size × (queue_size + 1)` plus the channel. A failed or aborted
//! upload leaves neither an object nor an unfinished multipart upload.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use tokio::sync::{mpsc, OnceCell};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::backend::Inner;
use crate::body::{chunks_stream, BodyFailure, ChannelBody};
use crate::classify::{from_sdk, Ctx};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use std::future::Future;
use std::time::Duration;
use crate::error::{Error, Operation, Result, ServiceInfo};
use crate::part_buffer::PartBuffer;
use crate::progress::{watch, Progress};
use crate::retry::backoff;

/// S3 allows at most this many parts.
const MAX_PARTS: i32 = 10_000;
/// Chunks queued between Node and the engine.
const CHANNEL_CHUNKS: usize = 4;

/// What is stored with the object. Built by [`crate::S3Backend`] after validation.
#[derive(Debug, Clone)]
pub struct PutOptions {
    pub content_type: String,
    pub metadata: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOutcome {
    pub etag: Option<String>,
}

/// The writing end of a streaming upload. `write` chunks in order, then
/// `finish`; or `abort`. Memory is bounded: `write` waits while the engine
/// is busy.
pub struct UploadSink {
    key: String,
    tx: Mutex<Option<mpsc::Sender<Bytes>>>,
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<Result<UploadOutcome>>>>,
    outcome: OnceCell<Result<UploadOutcome>>,
    /// The streaming PutObject's watchdog: a queued chunk is the service's turn.
    progress: Progress,
}

impl UploadSink {
    pub(crate) fn start(
        inner: Arc<Inner>,
        key: String,
        options: PutOptions,
        declared: Option<u64>,
        parent: &CancellationToken,
        sent: Option<Arc<AtomicU64>>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let cancel = parent.child_token();
        let progress = Progress::counting(sent.clone());
        let job = Job { inner, key: key.clone(), options, cancel: cancel.clone(), signal: parent.clone(), sent };
        let task = tokio::spawn(job.run_stream(rx, declared, progress.clone()));
        UploadSink { key, tx: Mutex::new(Some(tx)), cancel, task: Mutex::new(Some(task)), outcome: OnceCell::new(), progress }
    }

    /// Queues a chunk. Fails with the upload's error if it already failed
    /// (e.g. more bytes than declared, or the service refused it).
    pub async fn write(&self, chunk: Bytes) -> Result<()> {
        let tx = self.tx.lock().expect("sink lock").clone();
        let Some(tx) = tx else {
            return Err(Error::invalid(Operation::Upload, &self.key, "body", "write after the upload was finished or aborted"));
        };
        tokio::select! {
            sent = tx.send(chunk) => match sent {
                Ok(()) => {
                    // Data is queued: from now on a silent service is stalled,
                    // even if it never asks the body for more.
                    self.progress.pause(false);
                    Ok(())
                }
                // The engine stopped reading: report why.
                Err(_) => Err(self.settle().await.err().unwrap_or_else(|| {
                    Error::invalid(Operation::Upload, &self.key, "body", "the upload ended before all data was written")
                })),
            },
            // Aborted, or the engine gave up (e.g. a stall): report why.
            _ = self.cancel.cancelled() => Err(self.settle().await.err().unwrap_or(Error::Aborted {
                operation: Operation::Upload,
                key: self.key.clone(),
            })),
        }
    }

    /// Ends the body and waits for the object to be stored.
    pub async fn finish(&self) -> Result<UploadOutcome> {
        self.tx.lock().expect("sink lock").take();
        self.settle().await
    }

    /// Stops an unfinished upload without waiting (the engine still aborts
    /// it on the server). No effect once the upload has settled.
    pub fn cancel(&self) {
        if self.outcome.get().is_none() {
            self.cancel.cancel();
        }
    }

    /// Stops the upload and waits until nothing is left on the server.
    pub async fn abort(&self) {
        self.cancel.cancel();
        self.tx.lock().expect("sink lock").take();
        let _ = self.settle().await;
    }

    async fn settle(&self) -> Result<UploadOutcome> {
        self.outcome
            .get_or_init(|| async {
                let task = self.task.lock().expect("sink lock").take();
                match task {
                    Some(task) => task.await.unwrap_or_else(|e| {
                        Err(Error::Unknown {
                            operation: Operation::Upload,
                            key: self.key.clone(),
                            info: crate::error::ServiceInfo { detail: format!("upload task failed: {e}"), ..Default::default() },
                        })
                    }),
                    None => unreachable!("settled once"),
                }
            })
            .await
            .clone()
    }
}

impl Drop for UploadSink {
    /// A sink dropped unfinished (its Node object was collected, or its
    /// worker ended) aborts rather than storing a truncated object.
    fn drop(&mut self) {
        if self.outcome.get().is_none() {
            self.cancel.cancel();
        }
    }
}

/// One upload's shared state.
pub(crate) struct Job {
    pub inner: Arc<Inner>,
    pub key: String,
    pub options: PutOptions,
    /// Stops this upload: the caller's signal, an abort, or the engine giving up.
    pub cancel: CancellationToken,
    /// The caller's signal alone (the parent of `cancel`).
    pub signal: CancellationToken,
    /// Body bytes sent so far (retries count again), when the caller asked.
    pub sent: Option<Arc<AtomicU64>>,
}

fn length_mismatch(key: &str, declared: u64, seen: u64, too_long: bool) -> Error {
    let message = if too_long {
        format!("the body has more bytes than contentLength ({declared}); nothing was stored")
    } else {
        format!("the body ended after {seen} bytes but contentLength is {declared}; nothing was stored")
    };
    Error::invalid(Operation::Upload, key, "contentLength", message)
}

/// Parts of a body of unknown length double in size every 1,000 parts, so
/// the 10,000-part limit is never the reason a long stream fails (5 MiB parts
/// reach S3's 5 TiB object limit); memory grows only for such long streams.
fn grown_part_size(part_size: u64, part_number: u32) -> usize {
    let doublings = (part_number.saturating_sub(1) / 1000).min(10);
    (part_size << doublings).min(crate::config::MAX_PART_SIZE) as usize
}

/// One part's bytes, as received (no copy).
struct Part {
    chunks: Vec<Bytes>,
    len: u64,
}

/// Where parts come from.
enum PartSource {
    /// A Buffer already in memory: slices of it.
    Slices { data: Bytes, part_size: usize },
    /// Chunks from Node, regrouped into parts of `part_size`.
    Channel {
        rx: mpsc::Receiver<Bytes>,
        carry: Option<Bytes>,
        part_size: u64,
        declared: Option<u64>,
        seen: u64,
        ended: bool,
        /// Parts started so far.
        parts: u32,
    },
}

impl Job {
    fn ctx(&self) -> Ctx<'_> {
        Ctx { operation: Operation::Upload, key: &self.key, bucket: &self.inner.config.bucket }
    }

    fn aborted(&self) -> Error {
        Error::Aborted { operation: Operation::Upload, key: self.key.clone() }
    }

    fn length_mismatch(&self, declared: u64, seen: u64, too_long: bool) -> Error {
        length_mismatch(&self.key, declared, seen, too_long)
    }

    /// A Buffer body: one PutObject up to the threshold, multipart above.
    pub(crate) async fn run_bytes(self, data: Bytes) -> Result<UploadOutcome> {
        let mp = self.inner.config.multipart;
        if data.len() as u64 <= mp.threshold {
            return self.put_object(vec![data]).await;
        }
        let mut source = PartSource::Slices { data, part_size: mp.part_size as usize };
        let first = source.next_part(&self).await?.expect("data above threshold");
        self.multipart(first, source).await
    }

    async fn run_stream(self, rx: mpsc::Receiver<Bytes>, declared: Option<u64>, progress: Progress) -> Result<UploadOutcome> {
        let mp = self.inner.config.multipart;
        match declared {
            Some(len) if len > 0 && len <= mp.threshold => self.put_streaming(rx, len, progress).await,
            _ => {
                let mut source = PartSource::Channel { rx, carry: None, part_size: mp.part_size, declared, seen: 0, ended: false, parts: 0 };
                let first = source.next_part(&self).await?;
                let ended = matches!(source, PartSource::Channel { ended: true, .. });
                match first {
                    None => self.put_object(Vec::new()).await,
                    // Smaller than a part: no need for multipart.
                    Some(part) if ended => self.put_object(part.chunks).await,
                    Some(part) => self.multipart(part, source).await,
                }
            }
        }
    }

    fn put_request(&self) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        self.inner
            .client
            .put_object()
            .bucket(&self.inner.config.bucket)
            .key(&self.key)
            .content_type(&self.options.content_type)
            .set_metadata(Some(self.options.metadata.clone()).filter(|m| !m.is_empty()))
    }

    /// One PutObject from memory; retryable, since the bytes can be resent.
    async fn put_object(&self, chunks: Vec<Bytes>) -> Result<UploadOutcome> {
        let len: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        let out = self
            .send_body(true, |progress| {
                let body = if chunks.is_empty() { ByteStream::new(SdkBody::empty()) } else { chunks_stream(chunks.clone(), progress, self.cancel.clone()) };
                self.put_request()
                    .content_length(len as i64)
                    .body(body)
                    .customize()
                    .config_override(self.inner.body_override())
                    .send()
            })
            .await?;
        Ok(UploadOutcome { etag: out.e_tag })
    }

    /// Sends a request with a body under the no-progress watchdog; `retryable`
    /// bodies (in memory) are sent again after a stall, up to the retry limit.
    /// Other failures were already retried by the SDK.
    async fn send_body<T, E, Fut>(&self, retryable: bool, make: impl Fn(Progress) -> Fut) -> Result<T>
    where
        Fut: Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let retry = self.inner.config.retry;
        let limit = Duration::from_millis(self.inner.config.timeouts.request_ms);
        let attempts = if retryable { retry.max_attempts } else { 1 };
        let mut attempt = 1;
        loop {
            let progress = Progress::counting(self.sent.clone());
            let sent = tokio::select! {
                r = watch(make(progress.clone()), &progress, limit) => r,
                _ = self.cancel.cancelled() => return Err(self.aborted()),
            };
            match sent {
                Ok(r) => return r.map_err(|e| from_sdk(self.ctx(), e)),
                Err(_) if attempt < attempts => {
                    tokio::select! {
                        _ = tokio::time::sleep(backoff(&retry, attempt)) => {}
                        _ = self.cancel.cancelled() => return Err(self.aborted()),
                    }
                    attempt += 1;
                }
                Err(_) => return Err(self.stalled(limit, attempt)),
            }
        }
    }

    fn stalled(&self, limit: Duration, attempts: u32) -> Error {
        Error::Unavailable {
            operation: Operation::Upload,
            key: self.key.clone(),
            info: ServiceInfo {
                detail: format!("the service made no progress for {} ms (attempts: {attempts})", limit.as_millis()),
                ..Default::default()
            },
        }
    }

    /// One PutObject streaming from Node; not retryable (the bytes are gone).
    async fn put_streaming(&self, rx: mpsc::Receiver<Bytes>, declared: u64, progress: Progress) -> Result<UploadOutcome> {
        let failure: BodyFailure = Arc::default();
        let key = self.key.clone();
        let cancel = self.cancel.clone();
        let body = ChannelBody::new(
            rx,
            declared,
            failure.clone(),
            progress.clone(),
            {
                let key = key.clone();
                move |seen, too_long| length_mismatch(&key, declared, seen, too_long)
            },
            move || cancel.is_cancelled().then(|| Error::Aborted { operation: Operation::Upload, key: key.clone() }),
        );
        let body = ByteStream::new(SdkBody::from_body_1_x(body));
        let limit = Duration::from_millis(self.inner.config.timeouts.request_ms);
        let send = self
            .put_request()
            .content_length(declared as i64)
            .body(body)
            .customize()
            .config_override(self.inner.body_override())
            .send();
        let result = tokio::select! {
            r = watch(send, &progress, limit) => r,
            _ = self.cancel.cancelled() => return Err(self.aborted()),
        };
        let Ok(result) = result else {
            // Close the channel so a Node write waiting for room fails now.
            self.cancel.cancel();
            return Err(self.stalled(limit, 1));
        };
        // The body's own reason beats the transport error it caused.
        if let Some(err) = failure.lock().expect("body failure lock").take() {
            return Err(err);
        }
        if self.cancel.is_cancelled() {
            return Err(self.aborted());
        }
        let out = result.map_err(|e| from_sdk(self.ctx(), e))?;
        Ok(UploadOutcome { etag: out.e_tag })
    }

    async fn multipart(self, first: Part, mut source: PartSource) -> Result<UploadOutcome> {
        let job = Arc::new(self);
        let created = job
            .inner
            .client
            .create_multipart_upload()
            .bucket(&job.inner.config.bucket)
            .key(&job.key)
            .content_type(&job.options.content_type)
            .set_metadata(Some(job.options.metadata.clone()).filter(|m| !m.is_empty()))
            .send()
            .await
            .map_err(|e| from_sdk(job.ctx(), e))?;
        let upload_id = created.upload_id.unwrap_or_default();
        let result = match job.upload_parts(&upload_id, first, &mut source).await {
            Ok(parts) => job.complete(&upload_id, parts).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            if job.signal.is_cancelled() {
                // The caller's signal fired: answer now, clean up behind.
                let job = job.clone();
                tokio::spawn(async move { job.abort_multipart(&upload_id).await });
            } else {
                // A failure: the promise settles once nothing is left on the server.
                job.abort_multipart(&upload_id).await;
            }
        }
        result
    }

    async fn upload_parts(self: &Arc<Self>, upload_id: &str, first: Part, source: &mut PartSource) -> Result<Vec<CompletedPart>> {
        let queue_size = self.inner.config.multipart.queue_size;
        // Cancelled by the caller's abort or by the first failed part.
        let stop = self.cancel.child_token();
        let mut in_flight: JoinSet<Result<CompletedPart>> = JoinSet::new();
        let mut done = Vec::new();
        let mut first_error: Option<Error> = None;
        let mut next = Some(first);
        let mut number: i32 = 0;

        while let Some(part) = next.take() {
            while in_flight.len() >= queue_size {
                match in_flight.join_next().await.expect("non-empty") {
                    Ok(Ok(p)) => done.push(p),
                    Ok(Err(e)) => {
                        first_error.get_or_insert(e);
                        stop.cancel();
                    }
                    Err(join) => {
                        first_error.get_or_insert(self.task_failed(join));
                        stop.cancel();
                    }
                }
            }
            if first_error.is_some() {
                break;
            }
            number += 1;
            if number > MAX_PARTS {
                first_error = Some(Error::invalid(
                    Operation::Upload,
                    &self.key,
                    "multipart.partSize",
                    format!("the body needs more than {MAX_PARTS} parts; raise multipart.partSize"),
                ));
                break;
            }
            let job = self.clone();
            let upload_id = upload_id.to_owned();
            let stop_on_error = stop.clone();
            in_flight.spawn(async move {
                let r = job.upload_part(&upload_id, number, part).await;
                if r.is_err() {
                    stop_on_error.cancel();
                }
                r
            });
            match source.next_part_until(self, &stop).await {
                Ok(p) => next = p,
                Err(e) => {
                    first_error.get_or_insert(e);
                    stop.cancel();
                }
            }
        }

        while let Some(r) = in_flight.join_next().await {
            match r {
                Ok(Ok(p)) => done.push(p),
                Ok(Err(e)) => {
                    // A part's failure explains a source stopped by `stop`.
                    if matches!(first_error, None | Some(Error::Aborted { .. })) && !self.cancel.is_cancelled() {
                        first_error = Some(e);
                    }
                }
                Err(join) => {
                    first_error.get_or_insert(self.task_failed(join));
                }
            }
        }
        if self.cancel.is_cancelled() {
            return Err(self.aborted());
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        done.sort_by_key(|p| p.part_number);
        Ok(done)
    }

    fn task_failed(&self, join: tokio::task::JoinError) -> Error {
        Error::Unknown {
            operation: Operation::Upload,
            key: self.key.clone(),
            info: crate::error::ServiceInfo { detail: format!("part upload task failed: {join}"), ..Default::default() },
        }
    }

    async fn upload_part(&self, upload_id: &str, number: i32, part: Part) -> Result<CompletedPart> {
        let out = self
            .send_body(true, |progress| {
                self.inner
                    .client
                    .upload_part()
                    .bucket(&self.inner.config.bucket)
                    .key(&self.key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .content_length(part.len as i64)
                    .body(chunks_stream(part.chunks.clone(), progress, self.cancel.clone()))
                    .customize()
                    .config_override(self.inner.body_override())
                    .send()
            })
            .await?;
        Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag).build())
    }

    async fn complete(&self, upload_id: &str, parts: Vec<CompletedPart>) -> Result<UploadOutcome> {
        if self.cancel.is_cancelled() {
            return Err(self.aborted());
        }
        let expected_etag = multipart_etag(&parts);
        let sent = self
            .inner
            .client
            .complete_multipart_upload()
            .bucket(&self.inner.config.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await;
        match sent {
            Ok(out) => Ok(UploadOutcome { etag: out.e_tag }),
            Err(e) => recover_completed(&self.inner, &self.key, expected_etag, from_sdk(self.ctx(), e)).await,
        }
    }

    /// An unfinished upload costs the user storage; the SDK retries this.
    async fn abort_multipart(&self, upload_id: &str) {
        let _ = self
            .inner
            .client
            .abort_multipart_upload()
            .bucket(&self.inner.config.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .send()
            .await;
    }
}

/// S3's ETag of a completed multipart upload: the MD5 of the parts' binary
/// MD5s, then "-<parts>". `None` when a part's ETag is not a plain MD5
/// (e.g. SSE-KMS).
/// After a CompleteMultipartUpload failed: its answer may have been lost or
/// unreadable after the service completed the upload (the SDK's retry then
/// finds no such upload). If the object carries the ETag these parts make,
/// it is ours; without an expected ETag there is nothing to compare (no HEAD).
pub(crate) async fn recover_completed(inner: &Inner, key: &str, expected: Option<String>, err: Error) -> Result<UploadOutcome> {
    let Some(expected) = expected else {
        return Err(err);
    };
    match inner.client.head_object().bucket(&inner.config.bucket).key(key).send().await {
        Ok(h) if h.e_tag.as_deref() == Some(expected.as_str()) => Ok(UploadOutcome { etag: h.e_tag }),
        _ => Err(err),
    }
}

pub(crate) fn multipart_etag(parts: &[CompletedPart]) -> Option<String> {
    use md5::{Digest, Md5};
    let mut md5 = Md5::new();
    for part in parts {
        let hex = part.e_tag.as_deref()?.trim_matches('"');
        if hex.len() != 32 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..32).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect();
        md5.update(bytes?);
    }
    let digest: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("\"{digest}-{}\"", parts.len()))
}

impl PartSource {
    async fn next_part(&mut self, job: &Job) -> Result<Option<Part>> {
        self.next_part_until(job, &job.cancel).await
    }

    /// The next part, or `None` at the end of the body; `Aborted` once
    /// `stop` is cancelled.
    async fn next_part_until(&mut self, job: &Job, stop: &CancellationToken) -> Result<Option<Part>> {
        match self {
            PartSource::Slices { data, part_size } => {
                if data.is_empty() {
                    return Ok(None);
                }
                let take = (*part_size).min(data.len());
                let chunk = data.split_to(take);
                Ok(Some(Part { len: chunk.len() as u64, chunks: vec![chunk] }))
            }
            PartSource::Channel { rx, carry, part_size, declared, seen, ended, parts } => {
                // Parts are copied into memory Rust owns: each Node Buffer is
                // released as soon as it is copied, so memory is bounded by the
                // parts alone, not by when V8 gets round to collecting.
                *parts += 1;
                let mut part: Option<PartBuffer> = None;
                loop {
                    if part.as_ref().is_some_and(|p| p.remaining() == 0) {
                        break;
                    }
                    let chunk = match carry.take() {
                        Some(tail) => tail,
                        None if *ended => break,
                        None => {
                            let received = tokio::select! {
                                c = rx.recv() => c,
                                _ = stop.cancelled() => return Err(job.aborted()),
                            };
                            let Some(chunk) = received else {
                                if job.cancel.is_cancelled() {
                                    return Err(job.aborted());
                                }
                                *ended = true;
                                if let Some(d) = *declared {
                                    if *seen != d {
                                        return Err(job.length_mismatch(d, *seen, false));
                                    }
                                }
                                break;
                            };
                            *seen += chunk.len() as u64;
                            if let Some(d) = *declared {
                                if *seen > d {
                                    return Err(job.length_mismatch(d, *seen, true));
                                }
                            }
                            chunk
                        }
                    };
                    let buffer = match &mut part {
                        Some(p) => p,
                        None => part.insert(PartBuffer::new(grown_part_size(*part_size, *parts)).map_err(|e| {
                            Error::Unknown {
                                operation: Operation::Upload,
                                key: job.key.clone(),
                                info: crate::error::ServiceInfo { detail: format!("cannot allocate a part buffer: {e}"), ..Default::default() },
                            }
                        })?),
                    };
                    let took = buffer.fill(&chunk);
                    if took < chunk.len() {
                        // A chunk straddling two parts: keep the tail for the next one.
                        *carry = Some(chunk.slice(took..));
                    }
                }
                Ok(part.filter(|p| p.len() > 0).map(|p| Part { len: p.len() as u64, chunks: vec![p.freeze()] }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etag_matches_s3() {
        // Two parts whose MD5s are those of "a" and "b".
        let parts = [
            CompletedPart::builder().part_number(1).e_tag("\"0cc175b9c0f1b6a831c399e269772661\"").build(),
            CompletedPart::builder().part_number(2).e_tag("\"92eb5ffee6ae2fec3ad71c777531578f\"").build(),
        ];
        // md5(md5("a") ++ md5("b")), computed independently
        assert_eq!(multipart_etag(&parts).unwrap(), "\"96e024ba2074fe77e8e965ba43a704be-2\"");
        let opaque = [CompletedPart::builder().part_number(1).e_tag("\"not-md5\"").build()];
        assert_eq!(multipart_etag(&opaque), None);
    }
}
