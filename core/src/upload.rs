//! The upload engine: one PutObject for small or declared-length bodies
//! (from memory up to a part, so a reset connection can retry it),
//! concurrent multipart otherwise, with memory bounded by
//! `part_size × (queue_size + 1)` plus the channel. A failed or aborted
//! upload leaves neither an object nor an unfinished multipart upload.

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumType, CompletedPart};
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use tokio::sync::{mpsc, OnceCell};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::body::{BodyFailure, ChannelBody, Untouched};
use crate::checksum::{Checksum, ChecksumAlgorithm, Hasher};
use crate::error::{Error, Operation, Result};
use crate::multipart::{self, PartSource};
use crate::part_buffer::PartBuffer;
use crate::progress::Progress;
use crate::request::{Payload, S3Core, Transfer};
use crate::types::{PutOptions, UploadOutcome};

/// Chunks queued between Node and the engine.
const CHANNEL_CHUNKS: usize = 4;

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
        core: Arc<S3Core>,
        key: String,
        options: PutOptions,
        declared: Option<u64>,
        signal: &CancellationToken,
        sent: Option<Arc<AtomicU64>>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let progress = Progress::counting(sent.clone());
        let job = Job::new(core, key.clone(), options, signal, sent);
        let cancel = job.t.cancel.clone();
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
            _ = self.cancel.cancelled() => Err(self.settle().await.err().unwrap_or(Error::aborted(Operation::Upload, &self.key))),
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
                    Some(task) => {
                        task.await.unwrap_or_else(|e| Err(Error::unknown(Operation::Upload, &self.key, format!("upload task failed: {e}"))))
                    }
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

/// One upload: what it stores, where, and how it is stopped.
pub(crate) struct Job {
    core: Arc<S3Core>,
    t: Arc<Transfer>,
    put: PutOptions,
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

/// One part's bytes, as received (no copy), and their checksum when asked.
pub(crate) struct Part {
    chunks: Vec<Bytes>,
    len: u64,
    checksum: Option<Checksum>,
}

/// The parts of an upload, with their checksums when one was asked for.
struct Summed {
    parts: Parts,
    sums: Option<Sums>,
}

/// Checksums computed as parts are read, in order.
struct Sums {
    algorithm: ChecksumAlgorithm,
    /// The whole object's, for algorithms S3 takes as FULL_OBJECT.
    whole: Option<Hasher>,
}

impl Summed {
    fn new(parts: Parts, algorithm: Option<ChecksumAlgorithm>) -> Self {
        let sums = algorithm.map(|a| Sums { algorithm: a, whole: (a.multipart_type() == ChecksumType::FullObject).then(|| a.hasher()) });
        Summed { parts, sums }
    }

    /// The next part, with its checksum (and the whole object's updated).
    async fn next_part(&mut self, stop: &CancellationToken) -> Result<Option<Part>> {
        let mut part = self.parts.next_part(stop).await?;
        if let (Some(p), Some(sums)) = (&mut part, &mut self.sums) {
            p.checksum = Some(Hasher::of(sums.algorithm, p.chunks.iter().map(|c| c.as_ref())));
            if let Some(whole) = &mut sums.whole {
                p.chunks.iter().for_each(|c| whole.update(c));
            }
        }
        Ok(part)
    }
}

/// Where the parts of an upload come from.
enum Parts {
    /// A Buffer already in memory: slices of it.
    Slices { data: Bytes, part_size: usize },
    /// Chunks from Node, regrouped into parts of `part_size`.
    Channel {
        t: Arc<Transfer>,
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
    pub(crate) fn new(core: Arc<S3Core>, key: String, put: PutOptions, signal: &CancellationToken, sent: Option<Arc<AtomicU64>>) -> Self {
        Job { core, t: Arc::new(Transfer::new(Operation::Upload, key, signal, sent).with_encryption(put.encryption.clone())), put }
    }

    /// A Buffer body: one PutObject up to the threshold, multipart above.
    pub(crate) async fn run_bytes(self, data: Bytes) -> Result<UploadOutcome> {
        let mp = self.core.config().multipart;
        if data.len() as u64 <= mp.threshold {
            return self.put_object(vec![data]).await;
        }
        let mut source = Summed::new(Parts::Slices { data, part_size: mp.part_size as usize }, self.put.checksum);
        let first = source.next(&self.t.cancel).await?.expect("data above threshold");
        // Boxed: the multipart state would otherwise make every small upload's future large.
        Box::pin(multipart::run(&self.core, &self.t, &self.put, first, source)).await
    }

    async fn run_stream(self, rx: mpsc::Receiver<Bytes>, declared: Option<u64>, progress: Progress) -> Result<UploadOutcome> {
        let mp = self.core.config().multipart;
        match declared {
            // Larger than a part: streamed through, since buffering it would
            // cost more memory than multipart does. (With a checksum asked
            // for, multipart: its value must be known before the body goes.)
            Some(len) if len > mp.part_size && len <= mp.threshold && self.put.checksum.is_none() => {
                self.put_streaming(rx, len, progress).await
            }
            _ => {
                let t = self.t.clone();
                let parts = Parts::Channel { t, rx, carry: None, part_size: mp.part_size, declared, seen: 0, ended: false, parts: 0 };
                let mut source = Summed::new(parts, self.put.checksum);
                let first = source.next(&self.t.cancel).await?;
                let mut ended = matches!(source.parts, Parts::Channel { ended: true, .. });
                if !ended && declared.is_some_and(|d| d <= mp.part_size) {
                    // A declared length of exactly one part: the next read
                    // must be the end (or a too-long body's error).
                    let more = source.next(&self.t.cancel).await?;
                    debug_assert!(more.is_none(), "a declared length is checked while reading");
                    ended = true;
                }
                match first {
                    None => self.put_object(Vec::new()).await,
                    // At most a part: one PutObject from memory, which a
                    // connection reset can retry (a streamed body cannot be).
                    Some(part) if ended => self.put_object(part.chunks).await,
                    Some(part) => Box::pin(multipart::run(&self.core, &self.t, &self.put, part, source)).await,
                }
            }
        }
    }

    /// One PutObject from memory; retryable, since the bytes can be resent.
    async fn put_object(&self, chunks: Vec<Bytes>) -> Result<UploadOutcome> {
        let len: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        let checksum = self.put.checksum.map(|a| Hasher::of(a, chunks.iter().map(|c| c.as_ref())));
        self.core.put_object(&self.t, &self.put, len, Payload::Memory(chunks), checksum.as_ref()).await
    }

    /// One PutObject streaming from Node. Once a body byte went out it
    /// cannot be retried (the bytes are gone); a failure before the first
    /// one (connection refused, an early 503) is sent again, with backoff,
    /// up to the retry limit.
    async fn put_streaming(&self, rx: mpsc::Receiver<Bytes>, declared: u64, progress: Progress) -> Result<UploadOutcome> {
        let retry = self.core.config().retry;
        let untouched: Untouched = Arc::new(Mutex::new(Some(rx)));
        let mut attempt = 1;
        loop {
            let rx = untouched.lock().expect("untouched lock").take().expect("the channel is back before a new attempt");
            let failure: BodyFailure = Arc::default();
            let (key, cancel) = (self.t.key.clone(), self.t.cancel.clone());
            let body = ChannelBody::new(
                rx,
                declared,
                failure.clone(),
                progress.clone(),
                {
                    let key = key.clone();
                    move |seen, too_long| length_mismatch(&key, declared, seen, too_long)
                },
                move || cancel.is_cancelled().then(|| Error::aborted(Operation::Upload, &key)),
                untouched.clone(),
            );
            let body = ByteStream::new(SdkBody::from_body_1_x(body));
            let result = self.core.put_object(&self.t, &self.put, declared, Payload::Stream(body, progress.clone()), None).await;
            // The body's own reason beats the transport error it caused.
            if let Some(err) = failure.lock().expect("body failure lock").take() {
                return Err(err);
            }
            match result {
                Err(e @ Error::Unavailable { .. }) if attempt < retry.max_attempts && !self.t.cancel.is_cancelled() => {
                    tokio::select! {
                        _ = tokio::time::sleep(crate::retry::backoff(&retry, attempt)) => {}
                        _ = self.t.cancel.cancelled() => return Err(self.t.aborted()),
                    }
                    // The failed request's body is dropped by whoever held it
                    // (maybe a connection task): back by now if it took nothing.
                    if untouched.lock().expect("untouched lock").is_none() {
                        self.t.cancel.cancel();
                        return Err(e);
                    }
                    attempt += 1;
                }
                Err(e) => {
                    // Close the channel so a Node write waiting for room fails now.
                    self.t.cancel.cancel();
                    return Err(e);
                }
                ok => return ok,
            }
        }
    }
}

impl PartSource for Summed {
    type Part = Part;

    fn next(&mut self, stop: &CancellationToken) -> impl Future<Output = Result<Option<Part>>> + Send {
        self.next_part(stop)
    }

    async fn send(core: Arc<S3Core>, t: Arc<Transfer>, upload_id: Arc<str>, number: i32, part: Part) -> Result<CompletedPart> {
        core.upload_part(&t, &upload_id, number, part.len, Payload::Memory(part.chunks), part.checksum.as_ref()).await
    }

    fn whole_checksum(&mut self) -> Option<Checksum> {
        self.sums.as_mut().and_then(|s| s.whole.take()).map(Hasher::finish)
    }
}

impl Parts {
    /// The next part, or `None` at the end of the body; `Aborted` once
    /// `stop` is cancelled.
    async fn next_part(&mut self, stop: &CancellationToken) -> Result<Option<Part>> {
        match self {
            Parts::Slices { data, part_size } => {
                if data.is_empty() {
                    return Ok(None);
                }
                let take = (*part_size).min(data.len());
                let chunk = data.split_to(take);
                Ok(Some(Part { len: chunk.len() as u64, chunks: vec![chunk], checksum: None }))
            }
            Parts::Channel { t, rx, carry, part_size, declared, seen, ended, parts } => {
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
                                _ = stop.cancelled() => return Err(t.aborted()),
                            };
                            let Some(chunk) = received else {
                                if t.cancel.is_cancelled() {
                                    return Err(t.aborted());
                                }
                                *ended = true;
                                if let Some(d) = *declared {
                                    if *seen != d {
                                        return Err(length_mismatch(&t.key, d, *seen, false));
                                    }
                                }
                                break;
                            };
                            *seen += chunk.len() as u64;
                            if let Some(d) = *declared {
                                if *seen > d {
                                    return Err(length_mismatch(&t.key, d, *seen, true));
                                }
                            }
                            chunk
                        }
                    };
                    let buffer = match &mut part {
                        Some(p) => p,
                        None => part.insert(
                            // A body declared smaller than a part needs no more.
                            PartBuffer::new(match *declared {
                                Some(d) if d < *part_size => d as usize,
                                _ => grown_part_size(*part_size, *parts),
                            })
                            .map_err(|e| Error::unknown(Operation::Upload, &t.key, format!("cannot allocate a part buffer: {e}")))?,
                        ),
                    };
                    let took = buffer.fill(&chunk);
                    if took < chunk.len() {
                        // A chunk straddling two parts: keep the tail for the next one.
                        *carry = Some(chunk.slice(took..));
                    }
                }
                Ok(part.filter(|p| p.len() > 0).map(|p| Part { len: p.len() as u64, chunks: vec![p.freeze()], checksum: None }))
            }
        }
    }
}
