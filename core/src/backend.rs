//! [`S3Backend`]: the operations of the host's storage interface.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::Client;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::classify::{from_sdk, Ctx};
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
    /// Unix ms when the bucket last proved to exist.
    bucket_seen_ms: AtomicI64,
}

impl Inner {
    fn ctx<'a>(&'a self, operation: Operation, key: &'a str) -> Ctx<'a> {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
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
        let client = build_client(&config);
        S3Backend { inner: Arc::new(Inner { client, config, bucket_seen_ms: AtomicI64::new(i64::MIN / 2) }) }
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

    fn job(&self, key: String, options: PutOptions, cancel: &CancellationToken) -> Job {
        Job { inner: self.inner.clone(), key, options, cancel: cancel.child_token(), signal: cancel.clone() }
    }

    /// Stores bytes already in memory (a Node Buffer, without copying).
    pub async fn put_bytes(&self, key: String, options: PutOptions, data: Bytes, cancel: &CancellationToken) -> Result<UploadOutcome> {
        let out = self.job(key, options, cancel).run_bytes(data).await?;
        self.inner.mark_bucket_seen();
        Ok(out)
    }

    /// Starts a streaming upload; `declared` is the caller's contentLength.
    /// Must be called inside a tokio runtime.
    pub fn start_upload(&self, key: String, options: PutOptions, declared: Option<u64>, cancel: &CancellationToken) -> UploadSink {
        UploadSink::start(self.inner.clone(), key, options, declared, cancel)
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
    pub async fn download(&self, key: &str, cancel: &CancellationToken) -> Result<Download> {
        validate_key(Operation::Download, key)?;
        self.cancellable(Operation::Download, key, cancel, self.open_download(key, cancel)).await
    }

    async fn open_download(&self, key: &str, cancel: &CancellationToken) -> Result<Download> {
        let out = self
            .inner
            .client
            .get_object()
            .bucket(&self.inner.config.bucket)
            .key(key)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) => return Err(self.confirm_not_found(from_sdk(self.inner.ctx(Operation::Download, key), e)).await),
        };
        self.inner.mark_bucket_seen();
        let idle = Duration::from_millis(self.inner.config.timeouts.request_ms);
        Ok(Download::new(key.to_owned(), out, idle, cancel.child_token()))
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
                    last_modified: out.last_modified.and_then(|t| {
                        DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
                            .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
                    }),
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

    /// Signs a URL; no request is made and the object need not exist.
    pub async fn sign_url(
        &self,
        key: &str,
        method: SignMethod,
        expires_in: Option<f64>,
        content_type: Option<String>,
    ) -> Result<SignedUrl> {
        validate_key(Operation::SignUrl, key)?;
        let seconds = match expires_in {
            None => self.inner.config.signed_url_expiration,
            Some(s) if s.fract() == 0.0 && (1.0..=MAX_SIGNED_URL_EXPIRATION as f64).contains(&s) => s as u32,
            Some(s) => {
                return Err(Error::invalid(
                    Operation::SignUrl,
                    key,
                    "expiresIn",
                    format!("must be an integer number of seconds from 1 to {MAX_SIGNED_URL_EXPIRATION}, got {s}"),
                ))
            }
        };
        if let Some(ct) = &content_type {
            if ct.trim().is_empty() || ct.chars().any(|c| c.is_control() || !c.is_ascii()) {
                return Err(Error::invalid(Operation::SignUrl, key, "contentType", "must be non-empty printable ASCII"));
            }
        }
        // A GET URL has no body, so a content type has nothing to bind to.
        let content_type = content_type.filter(|_| method == SignMethod::Put);
        // SigV4 dates have whole seconds: truncate, so that expiresAt is
        // exactly when the URL stops working, not up to a second later.
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(now.as_secs());
        let presigning = PresigningConfig::builder()
            .start_time(start)
            .expires_in(Duration::from_secs(seconds as u64))
            .build()
            .map_err(|e| Error::invalid(Operation::SignUrl, key, "expiresIn", e.to_string()))?;
        let inner = &self.inner;
        let ctx = inner.ctx(Operation::SignUrl, key);
        let request = match method {
            SignMethod::Get => inner
                .client
                .get_object()
                .bucket(&inner.config.bucket)
                .key(key)
                .presigned(presigning)
                .await
                .map_err(|e| from_sdk(ctx, e))?,
            SignMethod::Put => inner
                .client
                .put_object()
                .bucket(&inner.config.bucket)
                .key(key)
                .set_content_type(content_type)
                .presigned(presigning)
                .await
                .map_err(|e| from_sdk(ctx, e))?,
        };
        let expires_at: DateTime<Utc> = (start + Duration::from_secs(seconds as u64)).into();
        Ok(SignedUrl {
            url: request.uri().to_owned(),
            expires_at: expires_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        })
    }
}
