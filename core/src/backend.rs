//! [`S3Backend`]: the operations of the host's storage interface.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::Client;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::classify::{classify, from_sdk, Ctx};
use crate::error::ServiceInfo;
use crate::post_policy;
use crate::presign::{attachment_disposition, UrlRequest, UrlSigner};
use std::sync::atomic::AtomicU64;
use crate::client::{body_request_override, build_client};
use tokio_util::sync::CancellationToken;
use std::future::Future;
use crate::config::{BackendConfig, MAX_SIGNED_URL_EXPIRATION};
use crate::download::Download;
use crate::error::{Error, Operation, Result};
use crate::keys::validate_key;
use crate::upload::{Job, PutOptions, UploadOutcome, UploadSink};

/// S3 caps user metadata (names and values) at 2 KB.
const MAX_METADATA_BYTES: usize = 2048;
/// A 404 on HEAD means "no such key" if the bucket answered within this window.
const BUCKET_SEEN_FRESH_MS: i64 = 10_000;

pub(crate) struct Inner {
    pub client: Client,
    pub config: BackendConfig,
    /// Signs URLs without the SDK's request pipeline (see presign.rs).
    signer: Option<UrlSigner>,
    /// The client's credentials, for signing POST forms.
    credentials: aws_credential_types::provider::SharedCredentialsProvider,
    /// Unix ms when the bucket last proved to exist.
    bucket_seen_ms: AtomicI64,
}

impl Inner {
    pub(crate) fn ctx<'a>(&'a self, operation: Operation, key: &'a str) -> Ctx<'a> {
        Ctx { operation, key, bucket: &self.config.bucket }
    }

    /// Per-request overrides for requests with a body (see client.rs).
    pub(crate) fn body_override(&self) -> aws_sdk_s3::config::Builder {
        body_request_override(&self.config)
    }

    fn mark_bucket_seen(&self) {
        self.bucket_seen_ms.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    fn bucket_recently_seen(&self) -> bool {
        Utc::now().timestamp_millis() - self.bucket_seen_ms.load(Ordering::Relaxed) < BUCKET_SEEN_FRESH_MS
    }
}

/// HTTP method of a signed URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignMethod {
    #[default]
    Get,
    Put,
}

impl SignMethod {
    pub fn parse(key: &str, method: &str) -> Result<Self> {
        match method {
            "GET" => Ok(SignMethod::Get),
            "PUT" => Ok(SignMethod::Put),
            other => Err(Error::invalid(
                Operation::SignUrl,
                key,
                "method",
                format!("must be \"GET\" or \"PUT\", got {other:?}"),
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl {
    pub url: String,
    /// ISO 8601, millisecond precision, UTC (like JavaScript's `toISOString`).
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub etag: Option<String>,
    pub content_type: Option<String>,
    pub last_modified: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// The S3 storage backend. Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct S3Backend {
    inner: Arc<Inner>,
}

impl S3Backend {
    pub fn new(config: BackendConfig) -> Self {
        let credentials = crate::client::credentials_provider(&config);
        let client = build_client(&config, credentials.clone());
        let signer = UrlSigner::new(&config);
        S3Backend { inner: Arc::new(Inner { client, config, signer, credentials, bucket_seen_ms: AtomicI64::new(i64::MIN / 2) }) }
    }

    pub fn config(&self) -> &BackendConfig {
        &self.inner.config
    }

    /// Validates what is stored with an object.
    pub fn put_options(
        &self,
        key: &str,
        content_type: &str,
        metadata: Option<HashMap<String, String>>,
    ) -> Result<PutOptions> {
        validate_key(Operation::Upload, key)?;
        let invalid = |field: &str, why: String| Err(Error::invalid(Operation::Upload, key, field, why));
        if content_type.trim().is_empty() {
            return invalid("contentType", "must not be empty".into());
        }
        if content_type.chars().any(|c| c.is_control() || !c.is_ascii()) {
            return invalid("contentType", "must be printable ASCII without CR or LF".into());
        }
        let metadata = metadata.unwrap_or_default();
        let mut total = 0;
        for (name, value) in &metadata {
            // x-amz-meta-<name> must be an HTTP header name
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if name.is_empty() || !name.bytes().all(token) {
                return invalid(&format!("metadata.{name}"), "metadata names must be letters, digits and -_. (an HTTP header token)".into());
            }
            if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return invalid(
                    &format!("metadata.{name}"),
                    "metadata values must be printable ASCII (S3 sends them as HTTP headers); encode other text, e.g. with encodeURIComponent".into(),
                );
            }
            total += name.len() + value.len();
        }
        if total > MAX_METADATA_BYTES {
            return invalid("metadata", format!("is {total} bytes; S3 allows at most {MAX_METADATA_BYTES}"));
        }
        Ok(PutOptions { content_type: content_type.to_owned(), metadata })
    }

    fn job(&self, key: String, options: PutOptions, cancel: &CancellationToken, sent: Option<Arc<AtomicU64>>) -> Job {
        Job { inner: self.inner.clone(), key, options, cancel: cancel.child_token(), signal: cancel.clone(), sent }
    }

    /// Stores bytes already in memory (a Node Buffer, without copying).
    /// `sent`, when given, counts the body bytes sent (for progress reports).
    pub async fn put_bytes(
        &self,
        key: String,
        options: PutOptions,
        data: Bytes,
        cancel: &CancellationToken,
        sent: Option<Arc<AtomicU64>>,
    ) -> Result<UploadOutcome> {
        let out = self.job(key, options, cancel, sent).run_bytes(data).await?;
        self.inner.mark_bucket_seen();
        Ok(out)
    }

    /// Starts a streaming upload; `declared` is the caller's contentLength.
    /// Must be called inside a tokio runtime.
    pub fn start_upload(
        &self,
        key: String,
        options: PutOptions,
        declared: Option<u64>,
        cancel: &CancellationToken,
        sent: Option<Arc<AtomicU64>>,
    ) -> UploadSink {
        UploadSink::start(self.inner.clone(), key, options, declared, cancel, sent)
    }

    /// Runs `op` unless `cancel` fires first; dropping the request closes
    /// its connection.
    async fn cancellable<T>(&self, operation: Operation, key: &str, cancel: &CancellationToken, op: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::select! {
            r = op => r,
            _ = cancel.cancelled() => Err(Error::Aborted { operation, key: key.to_owned() }),
        }
    }

    /// Opens a download; resolves once the service answered, so a missing
    /// key fails here rather than in the middle of a stream.
    /// `range`: only bytes `start..=end` (to the end of the object without `end`).
    /// `concurrency` > 1: a large object comes as that many ranged GETs at
    /// once, delivered in order (see `parallel.rs`).
    pub async fn download(
        &self,
        key: &str,
        range: Option<ByteRange>,
        concurrency: Option<u32>,
        cancel: &CancellationToken,
    ) -> Result<Download> {
        validate_key(Operation::Download, key)?;
        if let Some(ByteRange { start, end: Some(end) }) = range {
            if end < start {
                return Err(Error::invalid(Operation::Download, key, "range", format!("end ({end}) is before start ({start})")));
            }
        }
        let concurrency = concurrency.unwrap_or(1);
        if !(1..=crate::parallel::MAX_CONCURRENCY).contains(&concurrency) {
            return Err(Error::invalid(
                Operation::Download,
                key,
                "concurrency",
                format!("must be an integer from 1 to {}", crate::parallel::MAX_CONCURRENCY),
            ));
        }
        if concurrency > 1 && range.is_some() {
            return Err(Error::invalid(Operation::Download, key, "concurrency", "cannot be combined with range"));
        }
        self.cancellable(Operation::Download, key, cancel, self.open_download(key, range, concurrency, cancel)).await
    }

    async fn open_download(&self, key: &str, range: Option<ByteRange>, concurrency: u32, cancel: &CancellationToken) -> Result<Download> {
        // Parallel: the first request asks for the first part only; its
        // Content-Range tells the size, and the rest follows in parts.
        let range = if concurrency > 1 { Some(ByteRange { start: 0, end: Some(crate::parallel::PART_BYTES - 1) }) } else { range };
        let header = range.map(|r| match r.end {
            Some(end) => format!("bytes={}-{end}", r.start),
            None => format!("bytes={}-", r.start),
        });
        let out = self
            .inner
            .client
            .get_object()
            .bucket(&self.inner.config.bucket)
            .key(key)
            .set_range(header)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                let start = range.map(|r| r.start).unwrap_or(0);
                return Err(Error::invalid(
                    Operation::Download,
                    key,
                    "range",
                    format!("starts at byte {start}, at or past the end of the object"),
                ));
            }
            Err(e) => return Err(self.confirm_not_found(from_sdk(self.inner.ctx(Operation::Download, key), e)).await),
        };
        self.inner.mark_bucket_seen();
        let idle = Duration::from_millis(self.inner.config.timeouts.request_ms);
        let closed = cancel.child_token();
        if concurrency > 1 {
            return Ok(crate::parallel::download(self.inner.clone(), key, out, concurrency, idle, closed));
        }
        Ok(Download::new(key.to_owned(), out, idle, closed))
    }

    /// Idempotent: deleting a missing key succeeds (a missing bucket does not).
    pub async fn delete(&self, key: &str, cancel: &CancellationToken) -> Result<()> {
        validate_key(Operation::Delete, key)?;
        self.cancellable(Operation::Delete, key, cancel, self.delete_object(key)).await
    }

    async fn delete_object(&self, key: &str) -> Result<()> {
        self.inner
            .client
            .delete_object()
            .bucket(&self.inner.config.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| from_sdk(self.inner.ctx(Operation::Delete, key), e))?;
        self.inner.mark_bucket_seen();
        Ok(())
    }

    /// `false` only for a missing key; a missing bucket, bad credentials or
    /// an unreachable service are errors.
    pub async fn exists(&self, key: &str, cancel: &CancellationToken) -> Result<bool> {
        let head = self.cancellable(Operation::Exists, key, cancel, self.head_as(Operation::Exists, key));
        match head.await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn head(&self, key: &str, cancel: &CancellationToken) -> Result<ObjectInfo> {
        self.cancellable(Operation::Head, key, cancel, self.head_as(Operation::Head, key)).await
    }

    async fn head_as(&self, operation: Operation, key: &str) -> Result<ObjectInfo> {
        validate_key(operation, key)?;
        let inner = &self.inner;
        let result = inner.client.head_object().bucket(&inner.config.bucket).key(key).send().await;
        match result {
            Ok(out) => {
                inner.mark_bucket_seen();
                Ok(ObjectInfo {
                    size: out.content_length.unwrap_or(0).max(0) as u64,
                    etag: out.e_tag,
                    content_type: out.content_type,
                    last_modified: out.last_modified.and_then(|t| iso_from_parts(t.secs(), t.subsec_nanos())),
                    metadata: out.metadata.unwrap_or_default(),
                })
            }
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let err = from_sdk(inner.ctx(operation, key), e);
                match status {
                    // A HEAD answer has no body, so it cannot tell a missing
                    // key from a missing bucket...
                    Some(404) => Err(self.confirm_not_found(Error::NotFound {
                        operation,
                        key: key.to_owned(),
                        bucket: inner.config.bucket.clone(),
                    })
                    .await),
                    // ...or a bad signature from a denied permission: ask
                    // once with a 1-byte GET, whose error body has the code.
                    Some(403) | Some(400) => Err(self.diagnose(operation, key).await.unwrap_or(err)),
                    _ => Err(err),
                }
            }
        }
    }

    /// Turns "not found" into "bucket not found" when the bucket is missing
    /// (some servers answer NoSuchKey for both). Costs one HeadBucket, only
    /// when the bucket has not answered recently.
    async fn confirm_not_found(&self, err: Error) -> Error {
        let inner = &self.inner;
        let Error::NotFound { operation, key, bucket } = err else {
            return err;
        };
        if !inner.bucket_recently_seen() {
            match inner.client.head_bucket().bucket(&inner.config.bucket).send().await {
                Ok(_) => inner.mark_bucket_seen(),
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                    let info = crate::error::ServiceInfo {
                        status: Some(404),
                        code: Some("NoSuchBucket".into()),
                        request_id: None,
                        detail: "NoSuchBucket".into(),
                    };
                    return Error::BucketNotFound { operation, key, bucket, info };
                }
                Err(_) => {}
            }
        }
        Error::NotFound { operation, key, bucket }
    }

    async fn diagnose(&self, operation: Operation, key: &str) -> Option<Error> {
        let inner = &self.inner;
        let probe = inner.client.get_object().bucket(&inner.config.bucket).key(key).range("bytes=0-0").send().await;
        match probe {
            Ok(_) => None,
            Err(e) => {
                let err = from_sdk(inner.ctx(operation, key), e);
                Some(self.confirm_not_found(err).await)
            }
        }
    }


    fn expires_in(&self, operation: Operation, key: &str, expires_in: Option<f64>) -> Result<u32> {
        match expires_in {
            None => Ok(self.inner.config.signed_url_expiration),
            Some(s) if s.fract() == 0.0 && (1.0..=MAX_SIGNED_URL_EXPIRATION as f64).contains(&s) => Ok(s as u32),
            Some(s) => Err(Error::invalid(
                operation,
                key,
                "expiresIn",
                format!("must be an integer number of seconds from 1 to {MAX_SIGNED_URL_EXPIRATION}, got {s}"),
            )),
        }
    }

    /// Checks a signed URL request; returns the expiry in seconds.
    fn check_sign(&self, key: &str, o: &SignUrlOptions) -> Result<u32> {
        validate_key(Operation::SignUrl, key)?;
        let seconds = self.expires_in(Operation::SignUrl, key, o.expires_in)?;
        let invalid = |field: &str, why: &str| Err(Error::invalid(Operation::SignUrl, key, field, why));
        let header_value = |v: &str| !v.trim().is_empty() && v.chars().all(|c| c.is_ascii() && !c.is_control());
        if o.content_type.as_deref().is_some_and(|ct| !header_value(ct)) {
            return invalid("contentType", "must be non-empty printable ASCII");
        }
        if o.response_content_type.as_deref().is_some_and(|ct| !header_value(ct)) {
            return invalid("responseContentType", "must be non-empty printable ASCII");
        }
        if let Some(name) = &o.download_filename {
            if name.trim().is_empty() || name.chars().any(char::is_control) || name.len() > 1024 {
                return invalid("downloadFilename", "must be a non-empty file name without control characters, at most 1024 bytes");
            }
        }
        if let Some(n) = o.content_length {
            if n.fract() != 0.0 || !(0.0..=MAX_SINGLE_PUT as f64).contains(&n) {
                return invalid("contentLength", "must be an integer number of bytes from 0 to 5 GiB (the largest single PUT)");
            }
        }
        match o.method {
            SignMethod::Get if o.content_length.is_some() => invalid("contentLength", "applies to PUT URLs only"),
            SignMethod::Put if o.response_content_type.is_some() => invalid("responseContentType", "applies to GET URLs only"),
            SignMethod::Put if o.download_filename.is_some() => invalid("downloadFilename", "applies to GET URLs only"),
            _ => Ok(seconds),
        }
    }

    /// Signs a URL at once when the credentials are static (no request, no
    /// async step); `Ok(None)` means they come from the default chain and
    /// [`S3Backend::sign_url`] must be used.
    pub fn sign_url_now(&self, key: &str, options: &SignUrlOptions) -> Result<Option<SignedUrl>> {
        let seconds = self.check_sign(key, options)?;
        self.sign_checked_now(key, options, seconds)
    }

    /// [`S3Backend::sign_url_now`] for a request `check_sign` accepted.
    fn sign_checked_now(&self, key: &str, options: &SignUrlOptions, seconds: u32) -> Result<Option<SignedUrl>> {
        let Some(signer) = self.inner.signer.as_ref().filter(|s| s.has_static_credentials()) else {
            return Ok(None);
        };
        let start = whole_second_now();
        let disposition = options.download_filename.as_deref().map(attachment_disposition);
        let (get, put) = (options.method == SignMethod::Get, options.method == SignMethod::Put);
        let request = UrlRequest {
            key,
            method: if put { "PUT" } else { "GET" },
            expires_in: Duration::from_secs(seconds as u64),
            start: Some(start),
            // A GET URL has no body, so a content type has nothing to bind to.
            content_type: options.content_type.as_deref().filter(|_| put),
            content_length: options.content_length.map(|n| n as u64),
            response_content_type: options.response_content_type.as_deref().filter(|_| get),
            response_content_disposition: disposition.as_deref(),
        };
        let url = signer
            .sign(&request)
            .expect("static credentials")
            .map_err(|e| Error::invalid(Operation::SignUrl, key, "request", e))?;
        Ok(Some(SignedUrl { url, expires_at: iso_millis(start + Duration::from_secs(seconds as u64)) }))
    }

    /// Signs a URL; no request is made and the object need not exist.
    pub async fn sign_url(&self, key: &str, options: &SignUrlOptions) -> Result<SignedUrl> {
        let seconds = self.check_sign(key, options)?;
        if let Some(signed) = self.sign_checked_now(key, options, seconds)? {
            return Ok(signed);
        }
        // Default credential chain: the SDK resolves (and caches) them.
        let start = whole_second_now();
        let presigning = PresigningConfig::builder()
            .start_time(start)
            .expires_in(Duration::from_secs(seconds as u64))
            .build()
            .map_err(|e| Error::invalid(Operation::SignUrl, key, "expiresIn", e.to_string()))?;
        let inner = &self.inner;
        let ctx = inner.ctx(Operation::SignUrl, key);
        let request = match options.method {
            SignMethod::Get => inner
                .client
                .get_object()
                .bucket(&inner.config.bucket)
                .key(key)
                .set_response_content_type(options.response_content_type.clone())
                .set_response_content_disposition(options.download_filename.as_deref().map(attachment_disposition))
                .presigned(presigning)
                .await
                .map_err(|e| from_sdk(ctx, e))?,
            SignMethod::Put => inner
                .client
                .put_object()
                .bucket(&inner.config.bucket)
                .key(key)
                .set_content_type(options.content_type.clone())
                .set_content_length(options.content_length.map(|n| n as i64))
                .presigned(presigning)
                .await
                .map_err(|e| from_sdk(ctx, e))?,
        };
        Ok(SignedUrl { url: request.uri().to_owned(), expires_at: iso_millis(start + Duration::from_secs(seconds as u64)) })
    }

    /// A browser form upload (POST Object) whose size the service enforces.
    pub async fn presign_post(&self, options: &PostOptions) -> Result<PresignedForm> {
        let op = Operation::PresignPost;
        let key = options.key.as_str();
        validate_key(op, key)?;
        let seconds = self.expires_in(op, key, options.expires_in)?;
        let size = |field: &str, n: f64| {
            if n.fract() == 0.0 && (0.0..=MAX_SINGLE_PUT as f64).contains(&n) {
                Ok(n as u64)
            } else {
                Err(Error::invalid(op, key, field, format!("must be an integer number of bytes from 0 to 5 GiB, got {n}")))
            }
        };
        let max_size = size("maxSize", options.max_size)?;
        let min_size = size("minSize", options.min_size.unwrap_or(0.0))?;
        if min_size > max_size {
            return Err(Error::invalid(op, key, "minSize", format!("({min_size}) is larger than maxSize ({max_size})")));
        }
        if let Some(ct) = &options.content_type {
            if ct.trim().is_empty() || ct.chars().any(|c| c.is_control() || !c.is_ascii()) {
                return Err(Error::invalid(op, key, "contentType", "must be non-empty printable ASCII"));
            }
        }
        let Some(signer) = self.inner.signer.as_ref() else {
            return Err(Error::invalid(op, key, "endpoint", "this endpoint needs a signing scheme other than SigV4; POST forms are not supported"));
        };
        use aws_credential_types::provider::ProvideCredentials;
        let creds = self.inner.credentials.provide_credentials().await.map_err(|e| Error::Auth {
            operation: op,
            key: key.to_owned(),
            info: ServiceInfo { detail: crate::classify::error_chain(&e), ..Default::default() },
        })?;
        let now = whole_second_now();
        let form = post_policy::presign_post(&post_policy::PostPolicyInput {
            url: signer.form_url(),
            bucket: &self.inner.config.bucket,
            key,
            content_type: options.content_type.as_deref(),
            min_size,
            max_size,
            expires_in_secs: seconds as u64,
            now,
            region: &self.inner.config.region,
            access_key_id: creds.access_key_id(),
            secret_access_key: creds.secret_access_key(),
            session_token: creds.session_token(),
        });
        Ok(PresignedForm { url: form.url, fields: form.fields, expires_at: iso_millis(form.expires_at) })
    }

    /// Server-side copy, any size: one CopyObject up to the copy threshold,
    /// UploadPartCopy above it. `content_type`/`metadata` replace what the
    /// source had; the one not given is carried over.
    pub async fn copy(&self, from: &str, to: &str, options: CopyOptions, cancel: &CancellationToken) -> Result<UploadOutcome> {
        validate_key(Operation::Copy, from)?;
        // Same rules as an upload for what is stored with the copy.
        let check = |ct: &str, md: Option<HashMap<String, String>>| {
            self.put_options(to, ct, md).map_err(|e| match e {
                Error::InvalidArgument { key, field, message, .. } => Error::InvalidArgument { operation: Operation::Copy, key, field, message },
                other => other,
            })
        };
        check(options.content_type.as_deref().unwrap_or("application/octet-stream"), options.metadata.clone())?;
        self.cancellable(Operation::Copy, to, cancel, async {
            let source = self.head_as(Operation::Copy, from).await?;
            let replace = options.content_type.is_some() || options.metadata.is_some();
            let stored = check(
                options.content_type.as_deref().or(source.content_type.as_deref()).unwrap_or("application/octet-stream"),
                Some(options.metadata.clone().unwrap_or(source.metadata.clone())),
            )?;
            let out = if source.size <= self.inner.config.multipart.copy_threshold {
                self.copy_object(from, to, replace.then_some(&stored)).await?
            } else {
                crate::copy::multipart_copy(&self.inner, from, to, source.size, &stored, cancel).await?
            };
            self.inner.mark_bucket_seen();
            Ok(out)
        })
        .await
    }

    async fn copy_object(&self, from: &str, to: &str, replace: Option<&PutOptions>) -> Result<UploadOutcome> {
        let inner = &self.inner;
        let mut request = inner.client.copy_object().bucket(&inner.config.bucket).key(to).copy_source(copy_source(&inner.config.bucket, from));
        if let Some(put) = replace {
            request = request
                .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
                .content_type(&put.content_type)
                .set_metadata(Some(put.metadata.clone()).filter(|m| !m.is_empty()));
        }
        // A large copy takes long on the server: no per-attempt timeout.
        let out = request
            .customize()
            .config_override(inner.body_override())
            .send()
            .await
            .map_err(|e| from_sdk(inner.ctx(Operation::Copy, to), e))?;
        Ok(UploadOutcome { etag: out.copy_object_result.and_then(|r| r.e_tag) })
    }

    /// One page of keys under `prefix`, in key order.
    pub async fn list(&self, options: &ListOptions, cancel: &CancellationToken) -> Result<ListPage> {
        let prefix = options.prefix.as_deref().unwrap_or("");
        let op = Operation::List;
        if prefix.len() > 1024 || prefix.chars().any(char::is_control) {
            return Err(Error::invalid(op, prefix, "prefix", "must be at most 1024 bytes, without control characters"));
        }
        let limit = options.limit.unwrap_or(1000.0);
        if limit.fract() != 0.0 || !(1.0..=1000.0).contains(&limit) {
            return Err(Error::invalid(op, prefix, "limit", format!("must be an integer from 1 to 1000, got {limit}")));
        }
        if options.cursor.as_deref().is_some_and(str::is_empty) {
            return Err(Error::invalid(op, prefix, "cursor", "must be a nextCursor from an earlier page"));
        }
        let inner = &self.inner;
        let request = inner
            .client
            .list_objects_v2()
            .bucket(&inner.config.bucket)
            .set_prefix(Some(prefix.to_owned()).filter(|p| !p.is_empty()))
            .set_continuation_token(options.cursor.clone())
            .max_keys(limit as i32)
            .send();
        let out = self
            .cancellable(op, prefix, cancel, async { request.await.map_err(|e| from_sdk(inner.ctx(op, prefix), e)) })
            .await?;
        inner.mark_bucket_seen();
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

    /// Deletes up to any number of keys, 1,000 per request. Missing keys
    /// count as deleted. A failed request rejects (retrying is safe); keys
    /// the service refused one by one are in `failed`.
    pub async fn delete_many(&self, keys: Vec<String>, cancel: &CancellationToken) -> Result<DeleteManyOutcome> {
        let op = Operation::DeleteMany;
        for key in &keys {
            validate_key(op, key)?;
        }
        let mut seen = std::collections::HashSet::new();
        let keys: Vec<String> = keys.into_iter().filter(|k| seen.insert(k.clone())).collect();
        let mut outcome = DeleteManyOutcome::default();
        for batch in keys.chunks(1000) {
            let first = batch[0].as_str();
            let objects = batch
                .iter()
                .map(|k| aws_sdk_s3::types::ObjectIdentifier::builder().key(k).build().expect("key is set"))
                .collect::<Vec<_>>();
            let delete = aws_sdk_s3::types::Delete::builder().set_objects(Some(objects)).quiet(true).build().expect("objects are set");
            let inner = &self.inner;
            let request = inner.client.delete_objects().bucket(&inner.config.bucket).delete(delete).send();
            let out = self
                .cancellable(op, first, cancel, async { request.await.map_err(|e| from_sdk(inner.ctx(op, first), e)) })
                .await?;
            inner.mark_bucket_seen();
            let mut failed: HashMap<String, Error> = HashMap::new();
            for e in out.errors.unwrap_or_default() {
                let Some(key) = e.key else { continue };
                let info = ServiceInfo {
                    status: None,
                    detail: match (&e.code, &e.message) {
                        (Some(c), Some(m)) => format!("{c}: {m}"),
                        (Some(c), None) => c.clone(),
                        (None, Some(m)) => m.clone(),
                        (None, None) => "refused".into(),
                    },
                    code: e.code,
                    request_id: None,
                };
                let err = classify(inner.ctx(op, &key), info, false);
                failed.insert(key, err);
            }
            for key in batch {
                match failed.remove(key) {
                    Some(err) => outcome.failed.push((key.clone(), err)),
                    None => outcome.deleted.push(key.clone()),
                }
            }
        }
        Ok(outcome)
    }
}

/// Largest single PutObject (and so, a signed PUT or a POST form).
const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;

fn whole_second_now() -> SystemTime {
    // SigV4 dates have whole seconds: truncate, so that expiresAt is
    // exactly when the URL stops working, not up to a second later.
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_secs(now.as_secs())
}

fn iso_millis(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn iso_from_parts(secs: i64, nanos: u32) -> Option<String> {
    DateTime::<Utc>::from_timestamp(secs, nanos).map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// `x-amz-copy-source`: bucket and URL-encoded key.
pub(crate) fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", aws_smithy_http::label::fmt_string(key, aws_smithy_http::label::EncodingStrategy::Greedy))
}

/// Options of a signed URL.
#[derive(Debug, Clone, Default)]
pub struct SignUrlOptions {
    pub method: SignMethod,
    /// Seconds; the backend's default when absent.
    pub expires_in: Option<f64>,
    /// PUT: the Content-Type the uploader must send.
    pub content_type: Option<String>,
    /// PUT: the exact Content-Length the uploader must send.
    pub content_length: Option<f64>,
    /// GET: Content-Type of the response.
    pub response_content_type: Option<String>,
    /// GET: serve as an attachment with this file name.
    pub download_filename: Option<String>,
}

/// Bytes `start..=end` of an object (`end` absent: to the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    pub content_type: Option<String>,
    pub metadata: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub prefix: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub items: Vec<ObjectSummary>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteManyOutcome {
    pub deleted: Vec<String>,
    pub failed: Vec<(String, Error)>,
}

#[derive(Debug, Clone)]
pub struct PostOptions {
    pub key: String,
    pub content_type: Option<String>,
    pub max_size: f64,
    pub min_size: Option<f64>,
    pub expires_in: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct PresignedForm {
    pub url: String,
    /// Form fields in order; the file goes last.
    pub fields: Vec<(String, String)>,
    pub expires_at: String,
}
