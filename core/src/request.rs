//! [`S3Core`]: every request the backend sends, built in one place.
//!
//! The upload, copy, download and listing code never touches the SDK
//! client: they call these methods, which fill in the bucket, the
//! per-request settings (built once), error classification, the no-progress
//! watchdog for bodies, the lost-Complete recovery and the 404/403
//! diagnosis. A new header on every request (conditional writes, checksums,
//! encryption) is a change here and nowhere else.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::{HeadObjectError, HeadObjectOutput};
use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectInput, PutObjectOutput};
use aws_sdk_s3::operation::RequestId;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart, Delete, MetadataDirective, ObjectIdentifier};
use aws_sdk_s3::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::body::chunks_stream;
use crate::checksum::{answered_checksum, with_checksum, Checksum};
use crate::classify::{classify, error_chain, from_sdk};
use crate::client::{body_request_override, build_client, connector_settings, credentials_provider, Http};
use crate::config::BackendConfig;
use crate::direct::{output, Direct, Sending};
use crate::encryption::{CustomerKey, Encryption, EncryptionInfo, CUSTOMER_ALGORITHM};
use crate::error::{Error, Operation, Result, ServiceInfo};
use crate::observe::{observed, Observing, RequestHook};
use crate::presign::{attachment_disposition, UrlRequest, UrlSigner};
use crate::progress::{watch, Progress};
use crate::retry::backoff;
use crate::time::iso_from_parts;
use crate::types::{
    ByteRange, GetConditions, ListPage, ObjectHeaders, ObjectInfo, ObjectSummary, ObjectVersion, PutOptions, SignMethod, UploadOutcome,
    WriteCondition,
};

/// A 404 on HEAD means "no such key" if the bucket answered within this window.
const BUCKET_SEEN_FRESH_MS: i64 = 10_000;

/// Sends `$request` with the settings of a request whose duration grows
/// with its size (no per-attempt timeout: the no-progress watchdog, or the
/// server's own pace for copies, bounds it).
macro_rules! send_long {
    ($core:expr, $request:expr) => {
        $request.customize().config_override($core.body_override.clone()).send()
    };
}

/// Sends a request without a body through direct.rs when the backend has
/// it, else through the SDK: `$codec` names the operation in
/// [`Codecs`](crate::direct::Codecs). The answer is the SDK's either way;
/// with `$then`, what it makes of the success (`Some(output)`, or `None`
/// where direct.rs did not read it: [`Sending::status_only`]).
macro_rules! send_small {
    ($core:expr, $op:expr, $key:expr, $codec:ident, $request:expr, $how:expr) => {
        send_small!($core, $op, $key, $codec, $request, $how, output)
    };
    ($core:expr, $op:expr, $key:expr, $codec:ident, $request:expr, $how:expr, $then:expr) => {{
        let request = $request;
        match &$core.direct {
            Some(d) => match request.as_input().clone().build() {
                Ok(input) => Box::pin(d.send($op, $key, &d.ops.$codec, input, $how)).await.map($then),
                Err(e) => Err(SdkError::construction_failure(e)),
            },
            None => $core.observe($op, $key, request.send()).await.map(|out| $then(Some(out))),
        }
    }};
}

/// What a PutObject carries besides its body, on a fluent builder (the SDK
/// path) or an input builder (direct.rs): the same setters.
macro_rules! put_request {
    ($request:expr, $core:expr, $put:expr, $checksum:expr) => {{
        let put: &PutOptions = $put;
        let request = stored_with!($request, put);
        let request = encrypted!(request, $core.written(put.encryption.as_ref()));
        let request = with_checksum!(request, $checksum);
        on_condition!(request, &put.condition)
    }};
}

/// The caller's write condition on a PutObject or a CompleteMultipartUpload
/// (two builder types, the same setters).
macro_rules! on_condition {
    ($request:expr, $condition:expr) => {{
        let condition: &Option<WriteCondition> = $condition;
        match condition {
            Some(WriteCondition::Absent) => $request.if_none_match("*"),
            Some(WriteCondition::Matches(etag)) => $request.if_match(etag),
            None => $request,
        }
    }};
}

/// Sets what is stored with an object on a PutObject or a
/// CreateMultipartUpload request (two builder types, the same setters).
macro_rules! stored_with {
    ($request:expr, $put:expr) => {{
        let put: &PutOptions = $put;
        let h = &put.headers;
        let expires = h
            .expires
            .as_deref()
            .and_then(|e| aws_sdk_s3::primitives::DateTime::from_str(e, aws_sdk_s3::primitives::DateTimeFormat::DateTimeWithOffset).ok());
        $request
            .content_type(&put.content_type)
            .set_metadata(metadata(put))
            .set_cache_control(h.cache_control.clone())
            .set_content_disposition(h.content_disposition.clone())
            .set_content_encoding(h.content_encoding.clone())
            .set_content_language(h.content_language.clone())
            .set_expires(expires)
            .set_storage_class(h.storage_class.as_deref().map(aws_sdk_s3::types::StorageClass::from))
            .set_tagging(put.tagging.clone())
    }};
}

/// The SSE-C headers (algorithm, key, key MD5) on a request about an object
/// stored with `key`: a read, a part, a Complete. Nothing when `None`.
macro_rules! with_customer_key {
    ($request:expr, $key:expr) => {{
        let key: Option<&CustomerKey> = $key;
        match key {
            Some(k) => {
                $request.sse_customer_algorithm(CUSTOMER_ALGORITHM).sse_customer_key(k.expose_base64()).sse_customer_key_md5(k.md5_base64())
            }
            None => $request,
        }
    }};
}

/// The SSE-C headers of a copy's source (`x-amz-copy-source-server-side-encryption-customer-*`).
macro_rules! with_source_key {
    ($request:expr, $key:expr) => {{
        let key: Option<&CustomerKey> = $key;
        match key {
            Some(k) => $request
                .copy_source_sse_customer_algorithm(CUSTOMER_ALGORITHM)
                .copy_source_sse_customer_key(k.expose_base64())
                .copy_source_sse_customer_key_md5(k.md5_base64()),
            None => $request,
        }
    }};
}

/// How the service encrypts the object a PutObject, CreateMultipartUpload
/// or CopyObject writes (the same setters): SSE-S3, SSE-KMS, or SSE-C.
macro_rules! encrypted {
    ($request:expr, $encryption:expr) => {{
        use aws_sdk_s3::types::ServerSideEncryption;
        let encryption: Option<&Encryption> = $encryption;
        match encryption {
            None => $request,
            Some(Encryption::Aes256) => $request.server_side_encryption(ServerSideEncryption::Aes256),
            Some(Encryption::Kms { key_id, bucket_key }) => $request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .set_ssekms_key_id(key_id.clone())
                .set_bucket_key_enabled(*bucket_key),
            Some(Encryption::Customer(key)) => with_customer_key!($request, Some(key)),
        }
    }};
}

/// A request on its way: the SDK's `send()`, or direct.rs's.
type SdkFuture<'a, T, E> = Pin<Box<dyn Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>> + Send + 'a>>;

/// One transfer's identity and cancellation, shared by the requests it makes.
#[derive(Clone)]
pub(crate) struct Transfer {
    pub op: Operation,
    pub key: String,
    /// Stops this transfer: the caller's signal, an abort, or the engine giving up.
    pub cancel: CancellationToken,
    /// The caller's signal alone (the parent of `cancel`).
    pub signal: CancellationToken,
    /// Body bytes sent so far (retries count again), when the caller asked.
    pub sent: Option<Arc<AtomicU64>>,
    /// The encryption the call asked for the object written; `None`: the backend's.
    pub encryption: Option<Encryption>,
}

impl Transfer {
    pub(crate) fn new(op: Operation, key: String, signal: &CancellationToken, sent: Option<Arc<AtomicU64>>) -> Self {
        Transfer { op, key, cancel: signal.child_token(), signal: signal.clone(), sent, encryption: None }
    }

    /// The same transfer, writing an object encrypted as the call asked.
    pub(crate) fn with_encryption(mut self, encryption: Option<Encryption>) -> Self {
        self.encryption = encryption;
        self
    }

    pub(crate) fn aborted(&self) -> Error {
        Error::aborted(self.op, &self.key)
    }
}

/// A request body, and whether it can be sent again.
pub(crate) enum Payload {
    /// Bytes in memory: sent again after a stall, up to the retry limit.
    Memory(Vec<Bytes>),
    /// A body streaming from the caller, watched by its `Progress`: sent once.
    Stream(ByteStream, Progress),
}

/// How a GetObject is sent, beyond its range and conditions.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GetMode {
    /// Ask for the object's checksum (`x-amz-checksum-mode: ENABLED`); the
    /// download verifies it itself (verify.rs), across resumed answers.
    pub checksum: bool,
    /// One HTTP attempt, without the SDK's retries: a resumed download
    /// counts its GETs itself.
    pub once: bool,
}

/// Runs `op` unless `cancel` fires first; dropping the request closes its connection.
pub(crate) async fn until_cancelled<T>(
    operation: Operation,
    key: &str,
    cancel: &CancellationToken,
    op: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        r = op => r,
        _ = cancel.cancelled() => Err(Error::aborted(operation, key)),
    }
}

/// The SDK client for one bucket, and every request made with it.
pub(crate) struct S3Core {
    client: Client,
    config: BackendConfig,
    /// Settings for requests whose duration grows with their size.
    body_override: aws_sdk_s3::config::Builder,
    /// Signs URLs without the SDK's request pipeline (see presign.rs).
    signer: Option<UrlSigner>,
    /// The client's credentials, for signing POST forms.
    credentials: SharedCredentialsProvider,
    /// Unix ms when the bucket last proved to exist.
    bucket_seen_ms: AtomicI64,
    /// The caller's `onRequest` hook, told of every attempt (observe.rs).
    observing: Option<Observing>,
    /// HEAD, GET, DELETE and PUT without the SDK's orchestrator (direct.rs);
    /// `None` with credentials from the default chain.
    direct: Option<Direct>,
}

impl S3Core {
    pub(crate) fn new(config: BackendConfig, hook: Option<RequestHook>) -> Self {
        let credentials = credentials_provider(&config);
        let observing = hook.map(|h| Observing::new(h, &config.bucket));
        let http = Http::new(&config);
        let connector = http.connector(&connector_settings(&config));
        let signer = UrlSigner::new(&config);
        let direct = Direct::new(signer.clone(), connector, config.retry, config.timeouts.request_ms, observing.clone());
        S3Core {
            client: build_client(&config, credentials.clone(), observing.clone(), http),
            direct,
            observing,
            body_override: body_request_override(&config),
            signer,
            credentials,
            bucket_seen_ms: AtomicI64::new(i64::MIN / 2),
            config,
        }
    }

    pub(crate) fn config(&self) -> &BackendConfig {
        &self.config
    }

    fn bucket(&self) -> &str {
        &self.config.bucket
    }

    /// How an object written now is encrypted: as the call asked, else as the backend's option says.
    fn written<'a>(&'a self, asked: Option<&'a Encryption>) -> Option<&'a Encryption> {
        asked.or(self.config.encryption.as_ref())
    }

    /// The SSE-C key of the object a transfer writes (its parts and Complete carry it).
    fn write_key<'a>(&'a self, t: &'a Transfer) -> Option<&'a CustomerKey> {
        self.written(t.encryption.as_ref()).and_then(Encryption::customer_key)
    }

    /// The SSE-C key every read sends (GET, HEAD, a copy's source): the backend's.
    fn read_key(&self) -> Option<&CustomerKey> {
        self.config.encryption.as_ref().and_then(Encryption::customer_key)
    }

    /// Runs one SDK request (with its retries) so that the `onRequest` hook
    /// knows which operation and key its attempts belong to.
    ///
    /// The SDK's request future is large (its orchestrator's state machine);
    /// it lives in one heap allocation here, so the futures that await it
    /// (and the task napi spawns) stay small and are not copied around.
    fn observe<'a, F>(&'a self, op: Operation, key: &'a str, send: F) -> Pin<Box<dyn Future<Output = F::Output> + Send + 'a>>
    where
        F: Future + Send + 'a,
    {
        Box::pin(observed(self.observing.as_ref(), op, key, send))
    }

    fn error<E>(&self, operation: Operation, key: &str, err: SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let err = from_sdk(operation, key, self.bucket(), err);
        if self.read_key().is_some() {
            return customer_key_hint(err);
        }
        err
    }

    /// Records that the bucket answered (so a later 404 means "no such key").
    fn seen<T>(&self, out: T) -> T {
        self.mark_seen();
        out
    }

    fn mark_seen(&self) {
        self.bucket_seen_ms.store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    fn bucket_recently_seen(&self) -> bool {
        chrono::Utc::now().timestamp_millis() - self.bucket_seen_ms.load(Ordering::Relaxed) < BUCKET_SEEN_FRESH_MS
    }

    /// Sends a request with a body under the no-progress watchdog. Bodies in
    /// memory are sent again after a stall, up to the retry limit; other
    /// failures were already retried by the SDK.
    async fn send_body<T, E, Fut>(&self, t: &Transfer, payload: Payload, make: impl Fn(ByteStream) -> Fut) -> Result<T>
    where
        Fut: Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let retry = self.config.retry;
        let limit = Duration::from_millis(self.config.timeouts.request_ms);
        let (chunks, mut stream) = match payload {
            Payload::Memory(chunks) => (chunks, None),
            Payload::Stream(body, progress) => (Vec::new(), Some((body, progress))),
        };
        let attempts = if stream.is_some() { 1 } else { retry.max_attempts };
        let mut attempt = 1;
        loop {
            let (body, progress) = match stream.take() {
                Some(streaming) => streaming,
                None => {
                    let progress = Progress::counting(t.sent.clone());
                    let body = if chunks.is_empty() {
                        ByteStream::new(SdkBody::empty())
                    } else {
                        chunks_stream(chunks.clone(), progress.clone(), t.cancel.clone())
                    };
                    (body, progress)
                }
            };
            let sent = tokio::select! {
                r = watch(make(body), &progress, limit) => r,
                _ = t.cancel.cancelled() => return Err(t.aborted()),
            };
            match sent {
                Ok(r) => return r.map_err(|e| self.error(t.op, &t.key, e)),
                Err(_) if attempt < attempts => {
                    tokio::select! {
                        _ = tokio::time::sleep(backoff(&retry, attempt)) => {}
                        _ = t.cancel.cancelled() => return Err(t.aborted()),
                    }
                    attempt += 1;
                }
                Err(_) => {
                    let detail = format!("the service made no progress for {} ms (attempts: {attempt})", limit.as_millis());
                    return Err(Error::unavailable(t.op, &t.key, detail));
                }
            }
        }
    }

    /// PutObject of `len` bytes, on the caller's condition, with the body's
    /// `checksum` for the service to verify.
    pub(crate) async fn put_object(
        &self,
        t: &Transfer,
        put: &PutOptions,
        len: u64,
        payload: Payload,
        checksum: Option<&Checksum>,
    ) -> Result<UploadOutcome> {
        let out = self
            .send_body(t, payload, |body| -> SdkFuture<'_, PutObjectOutput, PutObjectError> {
                let Some(d) = &self.direct else {
                    let request = put_request!(self.client.put_object().bucket(self.bucket()).key(&t.key), self, put, checksum);
                    return self.observe(t.op, &t.key, send_long!(self, request.content_length(len as i64).body(body)));
                };
                let request = put_request!(PutObjectInput::builder().bucket(self.bucket()).key(&t.key), self, put, checksum);
                match request.content_length(len as i64).body(body).build() {
                    Ok(input) => Box::pin(async move { d.send(t.op, &t.key, &d.ops.put, input, Sending::LONG).await.map(output) }),
                    Err(e) => Box::pin(std::future::ready(Err(SdkError::construction_failure(e)))),
                }
            })
            .await?;
        let sum = answered_checksum!(out, put.checksum);
        Ok(self.seen(UploadOutcome { etag: out.e_tag, version_id: out.version_id, checksum: sum.or_else(|| checksum.cloned()) }))
    }

    /// CreateMultipartUpload; returns the upload id. (The caller's condition
    /// goes on the Complete.)
    pub(crate) async fn create_multipart(&self, t: &Transfer, put: &PutOptions) -> Result<String> {
        let request = stored_with!(self.client.create_multipart_upload().bucket(self.bucket()).key(&t.key), put);
        let request = encrypted!(request, self.written(put.encryption.as_ref()));
        let request = match put.checksum {
            Some(a) => request.checksum_algorithm(a.sdk()).checksum_type(a.multipart_type()),
            None => request,
        };
        let sent = self.observe(t.op, &t.key, request.send()).await;
        let out = sent.map_err(|e| self.error(t.op, &t.key, e))?;
        Ok(self.seen(out.upload_id.unwrap_or_default()))
    }

    /// UploadPart `number` of `len` bytes.
    pub(crate) async fn upload_part(
        &self,
        t: &Transfer,
        id: &str,
        number: i32,
        len: u64,
        payload: Payload,
        checksum: Option<&Checksum>,
    ) -> Result<CompletedPart> {
        let out = self
            .send_body(t, payload, |body| {
                let request = self.client.upload_part().bucket(self.bucket()).key(&t.key).upload_id(id).part_number(number);
                let request = with_customer_key!(request, self.write_key(t));
                let request = with_checksum!(request, checksum);
                self.observe(t.op, &t.key, send_long!(self, request.content_length(len as i64).body(body)))
            })
            .await?;
        Ok(with_checksum!(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag), checksum).build())
    }

    /// UploadPartCopy of bytes `range` of `from` as part `number` of `t.key`.
    pub(crate) async fn upload_part_copy(
        &self,
        t: &Transfer,
        from: &str,
        upload_id: &str,
        number: i32,
        range: ByteRange,
    ) -> Result<CompletedPart> {
        let request = self.client.upload_part_copy().bucket(self.bucket()).key(&t.key).upload_id(upload_id).part_number(number);
        let request = request.copy_source(copy_source(self.bucket(), from)).copy_source_range(range.header());
        let request = with_source_key!(with_customer_key!(request, self.write_key(t)), self.read_key());
        // A part copy takes long on the server: no per-attempt timeout.
        let send = self.observe(t.op, &t.key, send_long!(self, request));
        let sent = until_cancelled(t.op, &t.key, &t.cancel, async { send.await.map_err(|e| self.error(t.op, &t.key, e)) });
        let out = sent.await?;
        let etag = out.copy_part_result.and_then(|r| r.e_tag);
        Ok(CompletedPart::builder().part_number(number).set_e_tag(etag).build())
    }

    /// CompleteMultipartUpload, on the caller's condition. Its answer may be
    /// lost or unreadable after the service completed the upload (the SDK's
    /// retry then finds no such upload): if the object carries the ETag these
    /// parts make, it is ours.
    pub(crate) async fn complete_multipart(
        &self,
        t: &Transfer,
        put: &PutOptions,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        whole: Option<&Checksum>,
    ) -> Result<UploadOutcome> {
        let expected = multipart_etag(&parts);
        let request = self.client.complete_multipart_upload().bucket(self.bucket()).key(&t.key).upload_id(upload_id);
        let request = request.multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build());
        let request = with_customer_key!(request, self.write_key(t));
        // The whole object's checksum (FULL_OBJECT); SHA-256's composite value the service computes.
        let request = match whole {
            Some(_) => with_checksum!(request, whole).checksum_type(ChecksumType::FullObject),
            None => request,
        };
        let request = on_condition!(request, &put.condition);
        let sent = self.observe(t.op, &t.key, request.send()).await;
        let err = match sent {
            Ok(out) => {
                let sum = answered_checksum!(out, put.checksum);
                return Ok(self.seen(UploadOutcome {
                    etag: out.e_tag,
                    version_id: out.version_id,
                    checksum: sum.or_else(|| whole.cloned()),
                }));
            }
            Err(e) => self.error(t.op, &t.key, e),
        };
        // Without an expected ETag there is nothing to compare (no HEAD).
        let Some(expected) = expected else {
            return Err(err);
        };
        let head = with_customer_key!(self.client.head_object().bucket(self.bucket()).key(&t.key), self.write_key(t));
        match self.observe(t.op, &t.key, head.send()).await {
            Ok(h) if h.e_tag.as_deref() == Some(expected.as_str()) => {
                Ok(UploadOutcome { etag: h.e_tag, version_id: h.version_id, checksum: whole.cloned() })
            }
            _ => Err(err),
        }
    }

    /// AbortMultipartUpload: an unfinished upload costs the user storage.
    /// The SDK retries it; a failure leaves nothing more to do.
    pub(crate) async fn abort_multipart(&self, op: Operation, key: &str, upload_id: &str) {
        let request = self.client.abort_multipart_upload().bucket(self.bucket()).key(key).upload_id(upload_id);
        let _ = self.observe(op, key, request.send()).await;
    }

    /// CopyObject; `replace` sets what is stored with the copy instead of
    /// carrying the source's over. The copy is encrypted as `encryption`
    /// asks, else as the backend's option says (S3 does not carry the
    /// source's encryption over).
    pub(crate) async fn copy_object(
        &self,
        from: &str,
        to: &str,
        replace: Option<&PutOptions>,
        encryption: Option<&Encryption>,
    ) -> Result<UploadOutcome> {
        let request = self.client.copy_object().bucket(self.bucket()).key(to).copy_source(copy_source(self.bucket(), from));
        let mut request = with_source_key!(encrypted!(request, self.written(encryption)), self.read_key());
        if let Some(put) = replace {
            request = request.metadata_directive(MetadataDirective::Replace).content_type(&put.content_type).set_metadata(metadata(put));
        }
        // A large copy takes long on the server: no per-attempt timeout.
        let out = self.observe(Operation::Copy, to, send_long!(self, request)).await.map_err(|e| self.error(Operation::Copy, to, e))?;
        Ok(self.seen(UploadOutcome { etag: out.copy_object_result.and_then(|r| r.e_tag), version_id: out.version_id, checksum: None }))
    }

    /// GetObject, whole or `range`, on the conditions given; an `if_match`
    /// also keeps the parts of one download on one version. A missing key is
    /// told from a missing bucket.
    pub(crate) async fn get_object(
        &self,
        op: Operation,
        key: &str,
        range: Option<ByteRange>,
        when: &GetConditions,
        mode: GetMode,
    ) -> Result<GetObjectOutput> {
        let request = self.client.get_object().bucket(self.bucket()).key(key).set_range(range.map(|r| r.header()));
        let request = request.set_if_match(when.if_match.clone()).set_if_none_match(when.if_none_match.clone());
        let request = with_customer_key!(request, self.read_key()).set_version_id(when.version_id.clone());
        let sent = if self.direct.is_some() {
            // No SDK validation runs here: the header is all `checksum_mode` adds.
            let request = if mode.checksum { request.checksum_mode(ChecksumMode::Enabled) } else { request };
            let how = if mode.once { Sending::ONCE } else { Sending::SMALL };
            send_small!(self, op, key, get, request, how)
        } else {
            let mut request = request.customize();
            if mode.checksum {
                // The header alone: `checksum_mode(Enabled)` would also turn on the
                // SDK's validation, which fails a body only at its end, as an I/O
                // error that reads like a broken connection (and would be resumed).
                request = request.mutate_request(|r| {
                    r.headers_mut().insert("x-amz-checksum-mode", "ENABLED");
                });
            }
            if mode.once {
                let single = aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(1);
                request = request.config_override(aws_sdk_s3::config::Builder::default().retry_config(single));
            }
            self.observe(op, key, request.send()).await
        };
        let err = match sent {
            Ok(out) => {
                self.mark_seen();
                // Checked here too: some servers (s3s-fs) ignore conditional GET headers.
                return match conditions_hold(when, out.e_tag.as_deref()) {
                    Ok(()) => Ok(out),
                    Err(status) => Err(self.condition_failed(op, key, when, status, None, None)),
                };
            }
            Err(e) => e,
        };
        match err.raw_response().map(|r| r.status().as_u16()) {
            Some(416) => {
                let start = range.map_or(0, |r| r.start);
                Err(Error::invalid(op, key, "range", format!("starts at byte {start}, at or past the end of the object")))
            }
            Some(status @ (412 | 304)) => {
                Err(self.condition_failed(op, key, when, status, err.code().map(str::to_owned), err.request_id().map(str::to_owned)))
            }
            _ => Err(self.confirm_not_found(self.error(op, key, err)).await),
        }
    }

    /// HeadObject of the version a download reads (`when` pinned to its
    /// first answer), with the object's checksum: the ranged answers of a
    /// parallel download carry none. A 412 means the object changed.
    pub(crate) async fn head_pinned(&self, op: Operation, key: &str, when: &GetConditions) -> Result<HeadObjectOutput> {
        let request = self.client.head_object().bucket(self.bucket()).key(key).set_version_id(when.version_id.clone());
        let request = request.set_if_match(when.if_match.clone()).checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled);
        let request = with_customer_key!(request, self.read_key());
        let err = match self.observe(op, key, request.send()).await {
            Ok(out) => {
                return match conditions_hold(when, out.e_tag.as_deref()) {
                    Ok(()) => Ok(out),
                    Err(status) => Err(self.condition_failed(op, key, when, status, None, None)),
                };
            }
            Err(e) => e,
        };
        match err.raw_response().map(|r| r.status().as_u16()) {
            Some(412) => Err(self.condition_failed(op, key, when, 412, None, err.request_id().map(str::to_owned))),
            _ => Err(self.error(op, key, err)),
        }
    }

    /// A GET's condition did not hold: 412 (`if_match`) or 304 (`if_none_match`).
    fn condition_failed(
        &self,
        op: Operation,
        key: &str,
        when: &GetConditions,
        status: u16,
        code: Option<String>,
        id: Option<String>,
    ) -> Error {
        let detail = match (status, when.pinned) {
            (304, _) => format!("its ETag matches {} (ifNoneMatch)", when.if_none_match.as_deref().unwrap_or("?")),
            (_, true) => "the object changed during the download".to_owned(),
            _ => format!("the object's ETag is not {} (ifMatch)", when.if_match.as_deref().unwrap_or("?")),
        };
        let info = ServiceInfo { status: Some(status), code, request_id: id, detail };
        let key = key.to_owned();
        if status == 304 {
            Error::NotModified { operation: op, key, info }
        } else {
            Error::PreconditionFailed { operation: op, key, info }
        }
    }

    /// HeadObject. A HEAD answer has no body, so a 404 cannot tell a missing
    /// key from a missing bucket, nor a 403 a bad signature from a denied
    /// permission: those are diagnosed with one more request.
    pub(crate) async fn head_object(&self, op: Operation, key: &str) -> Result<ObjectInfo> {
        let request = self.client.head_object().bucket(self.bucket()).key(key).checksum_mode(ChecksumMode::Enabled);
        let request = with_customer_key!(request, self.read_key());
        let err = match send_small!(self, op, key, head, request, Sending::SMALL) {
            Ok(out) => {
                let checksum = answered_checksum!(out, None);
                let date = |t: aws_sdk_s3::primitives::DateTime| iso_from_parts(t.secs(), t.subsec_nanos());
                #[allow(deprecated)] // `expires` as a date; `expires_string` is the raw header
                let expires = out.expires.and_then(date).or(out.expires_string);
                return Ok(self.seen(ObjectInfo {
                    size: out.content_length.unwrap_or(0).max(0) as u64,
                    etag: out.e_tag,
                    content_type: out.content_type,
                    last_modified: out.last_modified.and_then(date),
                    metadata: out.metadata.unwrap_or_default(),
                    headers: ObjectHeaders {
                        cache_control: out.cache_control,
                        content_disposition: out.content_disposition,
                        content_encoding: out.content_encoding,
                        content_language: out.content_language,
                        expires,
                        storage_class: out.storage_class.map(|c| c.as_str().to_owned()),
                    },
                    version_id: out.version_id,
                    checksum,
                    encryption: encryption_info(
                        out.server_side_encryption.as_ref(),
                        out.ssekms_key_id,
                        out.bucket_key_enabled,
                        out.sse_customer_algorithm.is_some(),
                    ),
                }));
            }
            Err(e) => e,
        };
        Err(self.head_failed(op, key, err).await)
    }

    /// Whether the object exists: a HeadObject whose success is not read
    /// (by direct.rs; the SDK reads it anyway). A missing key is `NotFound`.
    pub(crate) async fn object_exists(&self, op: Operation, key: &str) -> Result<()> {
        let request = with_customer_key!(self.client.head_object().bucket(self.bucket()).key(key), self.read_key());
        let sent = send_small!(self, op, key, head, request, Sending::SMALL.status_only(), |_: Option<HeadObjectOutput>| ());
        match sent {
            Ok(()) => {
                self.mark_seen();
                Ok(())
            }
            Err(err) => Err(self.head_failed(op, key, err).await),
        }
    }

    /// A failed HeadObject, diagnosed: its answer has no body, so a 404
    /// cannot tell a missing key from a missing bucket, nor a 403 a bad
    /// signature from a denied permission.
    async fn head_failed(&self, op: Operation, key: &str, err: SdkError<HeadObjectError, HttpResponse>) -> Error {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let err = self.error(op, key, err);
        match status {
            Some(404) => self.confirm_not_found(Error::not_found(op, key, self.bucket())).await,
            // A 1-byte GET's error answer has a body with the code.
            Some(403) | Some(400) => {
                let get = with_customer_key!(self.client.get_object().bucket(self.bucket()).key(key).range("bytes=0-0"), self.read_key());
                match self.observe(op, key, get.send()).await {
                    Ok(_) => err,
                    Err(e) => self.confirm_not_found(self.error(op, key, e)).await,
                }
            }
            _ => err,
        }
    }

    /// Turns "not found" into "bucket not found" when the bucket is missing
    /// (some servers answer NoSuchKey for both). Costs one HeadBucket, only
    /// when the bucket has not answered recently.
    async fn confirm_not_found(&self, err: Error) -> Error {
        let Error::NotFound { operation, key, bucket } = err else {
            return err;
        };
        if !self.bucket_recently_seen() {
            match self.observe(operation, &key, self.client.head_bucket().bucket(self.bucket()).send()).await {
                Ok(_) => self.mark_seen(),
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                    // What was seen, and no more: a HEAD answer has no error code.
                    let info = ServiceInfo {
                        status: Some(404),
                        code: None,
                        request_id: None,
                        detail: "HEAD on the bucket answered 404; if the bucket exists, the endpoint may not be an S3 service".into(),
                    };
                    return Error::BucketNotFound { operation, key, bucket, info };
                }
                Err(_) => {}
            }
        }
        Error::NotFound { operation, key, bucket }
    }

    /// DeleteObject (of one version, when given): deleting a missing key succeeds.
    pub(crate) async fn delete_object(&self, key: &str, version_id: Option<String>) -> Result<()> {
        let request = self.client.delete_object().bucket(self.bucket()).key(key).set_version_id(version_id);
        let sent = send_small!(self, Operation::Delete, key, delete, request, Sending::SMALL);
        sent.map_err(|e| self.error(Operation::Delete, key, e))?;
        self.mark_seen();
        Ok(())
    }

    /// DeleteObjects of up to 1,000 keys; returns the keys the service refused.
    pub(crate) async fn delete_objects(&self, items: &[ObjectVersion]) -> Result<HashMap<ObjectVersion, Error>> {
        let op = Operation::DeleteMany;
        let identifier = |i: &ObjectVersion| ObjectIdentifier::builder().key(&i.key).set_version_id(i.version_id.clone()).build();
        let objects = items.iter().map(|i| identifier(i).expect("key is set")).collect();
        let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build().expect("objects are set");
        let first = &items[0].key;
        let sent = self.observe(op, first, self.client.delete_objects().bucket(self.bucket()).delete(delete).send()).await;
        let out = self.seen(sent.map_err(|e| self.error(op, first, e))?);
        let mut failed = HashMap::new();
        for e in out.errors.unwrap_or_default() {
            let Some(key) = e.key else { continue };
            let item = ObjectVersion { key: key.clone(), version_id: e.version_id.clone() };
            let detail = match (&e.code, &e.message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.clone(),
                (None, Some(m)) => m.clone(),
                (None, None) => "refused".into(),
            };
            let info = ServiceInfo { status: None, code: e.code, request_id: None, detail };
            failed.insert(item, classify(op, &key, self.bucket(), info, false));
        }
        Ok(failed)
    }

    /// ListObjectsV2: one page.
    pub(crate) async fn list_objects(&self, prefix: &str, cursor: Option<String>, limit: u32) -> Result<ListPage> {
        let request = self.client.list_objects_v2().bucket(self.bucket()).set_prefix(Some(prefix.to_owned()).filter(|p| !p.is_empty()));
        let sent = self.observe(Operation::List, prefix, request.set_continuation_token(cursor).max_keys(limit as i32).send()).await;
        let out = self.seen(sent.map_err(|e| self.error(Operation::List, prefix, e))?);
        let items = out
            .contents
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| {
                Some(ObjectSummary {
                    key: o.key?,
                    size: o.size.unwrap_or(0).max(0) as u64,
                    etag: o.e_tag,
                    last_modified: o.last_modified.and_then(|t| iso_from_parts(t.secs(), t.subsec_nanos())),
                })
            })
            .collect();
        let next_cursor = out.next_continuation_token.filter(|_| out.is_truncated == Some(true));
        Ok(ListPage { items, next_cursor })
    }

    /// Signs a URL on the calling thread when the credentials are static;
    /// `None` otherwise (then [`S3Core::presign`]).
    pub(crate) fn sign_now(&self, key: &str, r: &crate::validate::SignRequest<'_>, start: SystemTime) -> Option<Result<String>> {
        let signer = self.signer.as_ref().filter(|s| s.has_static_credentials())?;
        let disposition = r.download_filename.map(attachment_disposition);
        let request = UrlRequest {
            key,
            method: r.method.as_str(),
            expires_in: r.expires_in,
            start: Some(start),
            content_type: r.content_type,
            content_length: r.content_length,
            response_content_type: r.response_content_type,
            response_content_disposition: disposition.as_deref(),
            headers: &r.headers,
        };
        let signed = signer.sign(&request).expect("static credentials");
        Some(signed.map_err(|e| Error::invalid(Operation::SignUrl, key, "request", e)))
    }

    /// Signs a URL with the SDK's presigner (credentials from the default chain).
    pub(crate) async fn presign(&self, key: &str, r: &crate::validate::SignRequest<'_>, start: SystemTime) -> Result<String> {
        let op = Operation::SignUrl;
        let presigning = PresigningConfig::builder()
            .start_time(start)
            .expires_in(r.expires_in)
            .build()
            .map_err(|e| Error::invalid(op, key, "expiresIn", e.to_string()))?;
        let request = match r.method {
            SignMethod::Get => {
                let get = self.client.get_object().bucket(self.bucket()).key(key);
                let get = get.set_response_content_type(r.response_content_type.map(str::to_owned));
                let get = get.set_response_content_disposition(r.download_filename.map(attachment_disposition));
                let get = with_customer_key!(get, r.encryption.and_then(Encryption::customer_key));
                get.presigned(presigning).await.map_err(|e| self.error(op, key, e))?
            }
            SignMethod::Put => {
                let put = self.client.put_object().bucket(self.bucket()).key(key).set_content_type(r.content_type.map(str::to_owned));
                let put = put.set_content_length(r.content_length.map(|n| n as i64));
                let put = encrypted!(put, r.encryption);
                put.presigned(presigning).await.map_err(|e| self.error(op, key, e))?
            }
        };
        Ok(request.uri().to_owned())
    }

    /// Where a POST form goes, or `None` when the endpoint needs a signing
    /// scheme other than SigV4.
    pub(crate) fn form_url(&self) -> Option<String> {
        self.signer.as_ref().map(UrlSigner::form_url)
    }

    /// The client's credentials now (for signing POST forms).
    pub(crate) async fn credentials(&self, op: Operation, key: &str) -> Result<Credentials> {
        self.credentials.provide_credentials().await.map_err(|e| Error::Auth {
            operation: op,
            key: key.to_owned(),
            info: ServiceInfo::detail(error_chain(&e)),
        })
    }
}

/// What a HEAD answer says of the object's encryption: SSE-C when it names
/// the customer algorithm, else `x-amz-server-side-encryption` (with the KMS
/// key and Bucket Key for `aws:kms`).
fn encryption_info(
    sse: Option<&aws_sdk_s3::types::ServerSideEncryption>,
    key_id: Option<String>,
    bucket_key: Option<bool>,
    customer: bool,
) -> Option<EncryptionInfo> {
    if customer {
        return Some(EncryptionInfo { kind: "SSE-C".into(), key_id: None, bucket_key: None });
    }
    let kind = sse?.as_str().to_owned();
    let kms = kind.starts_with("aws:kms");
    Some(EncryptionInfo { kind, key_id: key_id.filter(|_| kms), bucket_key: bucket_key.filter(|_| kms) })
}

/// A 403 to a backend that sends an SSE-C key: S3 answers so also for a key
/// that is not the object's, and for a bucket that blocks SSE-C (the default
/// for new buckets since April 2026), so the message says it.
fn customer_key_hint(err: Error) -> Error {
    match err {
        Error::AccessDenied { operation, key, mut info } => {
            info.detail.push_str(
                "; the requests carry an SSE-C key (serverSideEncryption): S3 also answers 403 for a key that is not the object's, \
                 and for a bucket that blocks SSE-C (the default for new buckets since April 2026)",
            );
            Error::AccessDenied { operation, key, info }
        }
        other => other,
    }
}

/// User metadata as the SDK wants it: absent when empty.
fn metadata(put: &PutOptions) -> Option<HashMap<String, String>> {
    Some(put.metadata.clone()).filter(|m| !m.is_empty())
}

/// Whether an answer with `etag` meets the GET's conditions: `Err(412)` when
/// `if_match` names another ETag, `Err(304)` when `if_none_match` names this
/// one (or `*`). ETags compare without quotes and weakness marks.
fn conditions_hold(when: &GetConditions, etag: Option<&str>) -> std::result::Result<(), u16> {
    let bare = |e: &str| e.trim().trim_start_matches("W/").trim_matches('"').to_owned();
    let Some(etag) = etag.map(bare) else {
        return Ok(());
    };
    if when.if_match.as_deref().is_some_and(|m| m.trim() != "*" && bare(m) != etag) {
        return Err(412);
    }
    if when.if_none_match.as_deref().is_some_and(|m| m.trim() == "*" || bare(m) == etag) {
        return Err(304);
    }
    Ok(())
}

/// `x-amz-copy-source`: bucket and URL-encoded key.
fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", aws_smithy_http::label::fmt_string(key, aws_smithy_http::label::EncodingStrategy::Greedy))
}

/// S3's ETag of a completed multipart upload: the MD5 of the parts' binary
/// MD5s, then "-<parts>". `None` when a part's ETag is not a plain MD5
/// (e.g. SSE-KMS).
fn multipart_etag(parts: &[CompletedPart]) -> Option<String> {
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

    #[test]
    fn get_conditions_compare_etags_without_quotes() {
        let when = |m: Option<&str>, n: Option<&str>| GetConditions {
            if_match: m.map(str::to_owned),
            if_none_match: n.map(str::to_owned),
            ..Default::default()
        };
        let etag = Some("\"abc\"");
        assert_eq!(conditions_hold(&when(Some("abc"), None), etag), Ok(()));
        assert_eq!(conditions_hold(&when(Some("\"abc\""), None), etag), Ok(()));
        assert_eq!(conditions_hold(&when(Some("\"abd\""), None), etag), Err(412));
        assert_eq!(conditions_hold(&when(None, Some("W/\"abc\"")), etag), Err(304));
        assert_eq!(conditions_hold(&when(None, Some("*")), etag), Err(304));
        assert_eq!(conditions_hold(&when(None, Some("\"other\"")), etag), Ok(()));
        assert_eq!(conditions_hold(&when(Some("\"x\""), None), None), Ok(()));
    }

    #[test]
    fn a_403_with_an_sse_c_key_says_what_else_it_can_mean() {
        let info = crate::error::ServiceInfo { status: Some(403), code: Some("AccessDenied".into()), ..Default::default() };
        let denied = customer_key_hint(Error::AccessDenied { operation: Operation::Download, key: "k".into(), info });
        assert_eq!(denied.reason(), "access_denied");
        assert!(denied.to_string().contains("blocks SSE-C"), "{denied}");
        let missing = customer_key_hint(Error::not_found(Operation::Download, "k", "b"));
        assert_eq!(missing.reason(), "not_found");
    }

    #[test]
    fn copy_source_encodes_the_key() {
        assert_eq!(copy_source("b", "a b/ü+#?.txt"), "b/a%20b/%C3%BC%2B%23%3F.txt");
    }
}
