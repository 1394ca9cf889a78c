//! One multipart implementation, for uploads and for copies: create, parts
//! with at most `queue_size` in flight, complete, and abort on any failure,
//! so a failed or aborted transfer leaves no unfinished upload behind. What
//! a part is (bytes from a body, a byte range of another object) is the
//! caller's [`PartSource`]; every request goes through [`S3Core`].

use std::future::Future;
use std::sync::Arc;

use aws_sdk_s3::types::CompletedPart;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::checksum::Checksum;
use crate::error::{Error, Result};
use crate::request::{S3Core, Transfer};
use crate::types::{PutOptions, UploadOutcome};

/// S3 allows at most this many parts.
pub(crate) const MAX_PARTS: i32 = 10_000;

/// Where the parts of a multipart transfer come from.
pub(crate) trait PartSource: Send {
    /// One part, as handed to [`PartSource::send`].
    type Part: Send + 'static;

    /// The next part, or `None` at the end; `Aborted` once `stop` fires.
    fn next(&mut self, stop: &CancellationToken) -> impl Future<Output = Result<Option<Self::Part>>> + Send;

    /// The whole object's checksum, once every part was read (for a
    /// FULL_OBJECT checksum on the Complete); `None` by default.
    fn whole_checksum(&mut self) -> Option<Checksum> {
        None
    }

    /// Sends part `number` of upload `upload_id`.
    fn send(
        core: Arc<S3Core>,
        t: Arc<Transfer>,
        upload_id: Arc<str>,
        number: i32,
        part: Self::Part,
    ) -> impl Future<Output = Result<CompletedPart>> + Send + 'static;
}

/// Stores `first` and the rest of `source` as one multipart upload of `t.key`.
pub(crate) async fn run<S: PartSource>(
    core: &Arc<S3Core>,
    t: &Arc<Transfer>,
    put: &PutOptions,
    first: S::Part,
    mut source: S,
) -> Result<UploadOutcome> {
    let upload_id: Arc<str> = core.create_multipart(t, put).await?.into();
    let mut in_flight = JoinSet::new();
    let result = match send_parts(core, t, &upload_id, first, &mut source, &mut in_flight).await {
        Ok(_) if t.cancel.is_cancelled() => Err(t.aborted()),
        Ok(parts) => core.complete_multipart(t, put, &upload_id, parts, source.whole_checksum().as_ref()).await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        let (core, key, op) = (core.clone(), t.key.clone(), t.op);
        let cleanup = async move {
            // A part whose body the server already has can still be stored
            // after an abort that overtakes it, and then nothing removes it
            // (s3s-fs does this; AWS documents it for S3). So the parts in
            // flight finish (or fail on their own timeouts) first.
            while in_flight.join_next().await.is_some() {}
            core.abort_multipart(op, &key, &upload_id).await
        };
        if t.signal.is_cancelled() {
            // The caller's signal fired: answer now, clean up behind.
            tokio::spawn(cleanup);
        } else {
            // A failure: the promise settles once nothing is left on the server.
            cleanup.await;
        }
    }
    result
}

/// Sends every part, `queue_size` at a time; the parts in order, or the
/// first error (a part's failure beats the source it stopped). When the
/// transfer is cancelled it returns at once, leaving the parts still in
/// flight in `in_flight`: an abort stops the parts to come, not those sent.
async fn send_parts<S: PartSource>(
    core: &Arc<S3Core>,
    t: &Arc<Transfer>,
    upload_id: &Arc<str>,
    first: S::Part,
    source: &mut S,
    in_flight: &mut JoinSet<Result<CompletedPart>>,
) -> Result<Vec<CompletedPart>> {
    let queue_size = core.config().multipart.queue_size;
    let task_failed = |join: tokio::task::JoinError| Error::unknown(t.op, &t.key, format!("part task failed: {join}"));
    // Cancelled by the caller's abort or by the first failed part; stops the
    // source, not the parts in flight.
    let stop = t.cancel.child_token();
    // The parts' own transfer: the same progress counter, no cancellation.
    let part_t = Arc::new(Transfer {
        op: t.op,
        key: t.key.clone(),
        cancel: CancellationToken::new(),
        signal: CancellationToken::new(),
        sent: t.sent.clone(),
        encryption: t.encryption.clone(),
    });
    let mut done = Vec::new();
    let mut first_error: Option<Error> = None;
    let mut next = Some(first);
    let mut number: i32 = 0;

    while let Some(part) = next.take() {
        while in_flight.len() >= queue_size {
            let joined = tokio::select! {
                j = in_flight.join_next() => j.expect("non-empty"),
                _ = t.cancel.cancelled() => return Err(t.aborted()),
            };
            match joined {
                Ok(Ok(p)) => done.push(p),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                    stop.cancel();
                }
                Err(join) => {
                    first_error.get_or_insert(task_failed(join));
                    stop.cancel();
                }
            }
        }
        if first_error.is_some() {
            break;
        }
        number += 1;
        if number > MAX_PARTS {
            let why = format!("the body needs more than {MAX_PARTS} parts; raise multipart.partSize");
            first_error = Some(Error::invalid(t.op, &t.key, "multipart.partSize", why));
            break;
        }
        let request = S::send(core.clone(), part_t.clone(), upload_id.clone(), number, part);
        let stop_on_error = stop.clone();
        in_flight.spawn(async move {
            let r = request.await;
            if r.is_err() {
                stop_on_error.cancel();
            }
            r
        });
        match source.next(&stop).await {
            Ok(p) => next = p,
            Err(e) => {
                first_error.get_or_insert(e);
                stop.cancel();
            }
        }
    }

    loop {
        let joined = tokio::select! {
            j = in_flight.join_next() => j,
            _ = t.cancel.cancelled() => return Err(t.aborted()),
        };
        let Some(r) = joined else { break };
        match r {
            Ok(Ok(p)) => done.push(p),
            Ok(Err(e)) => {
                // A part's failure explains a source stopped by `stop`.
                if matches!(first_error, None | Some(Error::Aborted { .. })) && !t.cancel.is_cancelled() {
                    first_error = Some(e);
                }
            }
            Err(join) => {
                first_error.get_or_insert(task_failed(join));
            }
        }
    }
    if t.cancel.is_cancelled() {
        return Err(t.aborted());
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    done.sort_by_key(|p| p.part_number);
    Ok(done)
}
