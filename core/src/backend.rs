//! [`S3Backend`]: the operations of the host's storage interface and the
//! ones beyond it. A facade: each method checks its arguments
//! ([`crate::validate`]) and calls the transfer code or [`S3Core`], which
//! sends every request.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::config::BackendConfig;
use crate::download::Download;
use crate::error::{Error, Operation, Result};
use crate::keys::validate_key;
use crate::observe::RequestHook;
use crate::post_policy;
use crate::request::{until_cancelled, GetMode, S3Core};
use crate::time::{iso_millis, whole_second_now};
use crate::types::{
    CopyOptions, DeleteManyOutcome, DownloadOptions, ListOptions, ListPage, ObjectInfo, ObjectVersion, PostOptions, PresignedForm,
    PutOptions, PutRequest, SignUrlOptions, SignedUrl, UploadOutcome,
};
use crate::upload::{Job, UploadSink};
use crate::validate;
use crate::verify;

/// The S3 storage backend. Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct S3Backend {
    core: Arc<S3Core>,
}

impl S3Backend {
    /// A backend for `config`; no request is made until the first operation.
    pub fn new(config: BackendConfig) -> Self {
        Self::with_request_hook(config, None)
    }

    /// A backend whose every HTTP attempt (retries included; presigning
    /// sends none) is reported to `hook`, which must return at once.
    pub fn with_request_hook(config: BackendConfig, hook: Option<RequestHook>) -> Self {
        S3Backend { core: Arc::new(S3Core::new(config, hook)) }
    }

    /// The configuration in force.
    pub fn config(&self) -> &BackendConfig {
        self.core.config()
    }

    /// Validates what an upload stores with the object, and its condition.
    pub fn put_options(&self, key: &str, request: PutRequest) -> Result<PutOptions> {
        validate::put_options(Operation::Upload, key, request)
    }

    /// Stores bytes already in memory (a Node Buffer, without copying).
    /// `sent`, when given, counts the body bytes sent (for progress reports).
    pub async fn put_bytes(
        &self,
        key: String,
        options: PutOptions,
        data: Bytes,
        signal: &CancellationToken,
        sent: Option<Arc<AtomicU64>>,
    ) -> Result<UploadOutcome> {
        Job::new(self.core.clone(), key, options, signal, sent).run_bytes(data).await
    }

    /// Starts a streaming upload; `content_length` is the caller's declared
    /// length, checked here. Must be called inside a tokio runtime.
    pub fn start_upload(
        &self,
        key: String,
        options: PutOptions,
        content_length: Option<f64>,
        signal: &CancellationToken,
        sent: Option<Arc<AtomicU64>>,
    ) -> Result<UploadSink> {
        let declared = validate::declared_length(&key, content_length)?;
        Ok(UploadSink::start(self.core.clone(), key, options, declared, signal, sent))
    }

    /// Opens a download; resolves once the service answered, so a missing
    /// key fails here rather than in the middle of a stream. A range fetches
    /// only those bytes; `concurrency` > 1 fetches a large object as that
    /// many ranged GETs at once, delivered in order (see `parallel.rs`). A
    /// body that breaks is resumed from the next byte (resume.rs); a whole
    /// object's full-object checksum is verified as it streams (verify.rs).
    pub async fn download(&self, key: &str, options: &DownloadOptions, signal: &CancellationToken) -> Result<Download> {
        let (range, concurrency) = validate::download(key, options)?;
        let when = validate::get_conditions(key, options)?;
        let op = Operation::Download;
        let idle = std::time::Duration::from_millis(self.config().timeouts.request_ms);
        let closed = signal.child_token();
        if concurrency > 1 {
            let first_part = self.core.get_object(op, key, Some(crate::parallel::FIRST_PART), &when, GetMode::default());
            let first = until_cancelled(op, key, signal, first_part).await?;
            return Ok(crate::parallel::download(self.core.clone(), key, first, when.version_id, concurrency, idle, closed));
        }
        // A whole object's answer carries its checksum when asked; a ranged one none.
        let mode = GetMode { checksum: range.is_none(), ..Default::default() };
        let out = until_cancelled(op, key, signal, self.core.get_object(op, key, range, &when, mode)).await?;
        let expected = range.is_none().then(|| verify::of_get(&out)).flatten();
        let download = Download::new(key.to_owned(), out, Some(idle), closed);
        Ok(download.resumable(self.core.clone(), range, when.version_id).verified(expected))
    }

    /// Idempotent: deleting a missing key succeeds (a missing bucket does
    /// not). With `version_id`, that version is removed for good.
    pub async fn delete(&self, key: &str, version_id: Option<String>, signal: &CancellationToken) -> Result<()> {
        let version_id = validate::version_id(Operation::Delete, key, version_id)?;
        until_cancelled(Operation::Delete, key, signal, self.core.delete_object(key, version_id)).await
    }

    /// `false` only for a missing key; a missing bucket, bad credentials or
    /// an unreachable service are errors.
    pub async fn exists(&self, key: &str, signal: &CancellationToken) -> Result<bool> {
        let op = Operation::Exists;
        validate_key(op, key)?;
        match until_cancelled(op, key, signal, self.core.object_exists(op, key)).await {
            Ok(()) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Size, ETag, content type, last modified time and metadata of an object.
    pub async fn head(&self, key: &str, signal: &CancellationToken) -> Result<ObjectInfo> {
        let op = Operation::Head;
        validate_key(op, key)?;
        until_cancelled(op, key, signal, self.core.head_object(op, key)).await
    }

    /// Signs a URL at once when the credentials are static (no request, no
    /// async step); `Ok(None)` means they come from the default chain and
    /// [`S3Backend::sign_url`] must be used.
    pub fn sign_url_now(&self, key: &str, options: &SignUrlOptions) -> Result<Option<SignedUrl>> {
        let config = self.config();
        let request = validate::sign_url(key, options, config.signed_url_expiration, config.encryption.as_ref())?;
        let start = whole_second_now();
        let Some(url) = self.core.sign_now(key, &request, start) else {
            return Ok(None);
        };
        Ok(Some(SignedUrl { url: url?, expires_at: iso_millis(start + request.expires_in), headers: request.owned_headers() }))
    }

    /// Signs a URL; no request is made and the object need not exist.
    pub async fn sign_url(&self, key: &str, options: &SignUrlOptions) -> Result<SignedUrl> {
        let config = self.config();
        let request = validate::sign_url(key, options, config.signed_url_expiration, config.encryption.as_ref())?;
        let start = whole_second_now();
        let url = match self.core.sign_now(key, &request, start) {
            Some(url) => url?,
            // Default credential chain: the SDK resolves (and caches) them.
            None => self.core.presign(key, &request, start).await?,
        };
        Ok(SignedUrl { url, expires_at: iso_millis(start + request.expires_in), headers: request.owned_headers() })
    }

    /// A browser form upload (POST Object) whose size the service enforces.
    pub async fn presign_post(&self, options: &PostOptions) -> Result<PresignedForm> {
        let op = Operation::PresignPost;
        let key = options.key.as_str();
        let (min_size, max_size, seconds) = validate::post(options, self.config().signed_url_expiration)?;
        let encryption_fields = validate::post_encryption(key, self.config().encryption.as_ref())?;
        let Some(url) = self.core.form_url() else {
            return Err(Error::invalid(
                op,
                key,
                "endpoint",
                "this endpoint needs a signing scheme other than SigV4; POST forms are not supported",
            ));
        };
        let creds = self.core.credentials(op, key).await?;
        let config = self.config();
        let form = post_policy::presign_post(&post_policy::PostPolicyInput {
            url,
            bucket: &config.bucket,
            key,
            content_type: options.content_type.as_deref(),
            min_size,
            max_size,
            expires_in_secs: seconds as u64,
            now: whole_second_now(),
            region: &config.region,
            access_key_id: creds.access_key_id(),
            secret_access_key: creds.secret_access_key(),
            session_token: creds.session_token(),
            extra_fields: &encryption_fields,
        });
        Ok(PresignedForm { url: form.url, fields: form.fields, expires_at: iso_millis(form.expires_at) })
    }

    /// Server-side copy, any size. `content_type`/`metadata` replace what the
    /// source had; the one not given is carried over (the source is read
    /// with one HEAD, which also gives its size). The copy is encrypted as
    /// `server_side_encryption` asks, else as the backend's option says; an
    /// SSE-C source is read with the backend's key.
    pub async fn copy(&self, from: &str, to: &str, options: CopyOptions, signal: &CancellationToken) -> Result<UploadOutcome> {
        let op = Operation::Copy;
        validate_key(op, from)?;
        let default_type = "application/octet-stream";
        // Same rules as an upload for what is stored with the copy.
        let stored = |content_type: &str, metadata| PutRequest {
            content_type: content_type.to_owned(),
            metadata,
            server_side_encryption: options.server_side_encryption.clone(),
            ..Default::default()
        };
        validate::put_options(op, to, stored(options.content_type.as_deref().unwrap_or(default_type), options.metadata.clone()))?;
        let source = until_cancelled(op, to, signal, self.core.head_object(op, from)).await?;
        let replace = options.content_type.is_some() || options.metadata.is_some();
        let content_type = options.content_type.as_deref().or(source.content_type.as_deref()).unwrap_or(default_type);
        let stored =
            validate::put_options(op, to, stored(content_type, Some(options.metadata.unwrap_or_else(|| source.metadata.clone()))))?;
        crate::copy::copy(&self.core, from, to, &source, &stored, replace, signal).await
    }

    /// One page of keys under `prefix`, in key order.
    pub async fn list(&self, options: &ListOptions, signal: &CancellationToken) -> Result<ListPage> {
        let (prefix, limit) = validate::list(options)?;
        until_cancelled(Operation::List, prefix, signal, self.core.list_objects(prefix, options.cursor.clone(), limit)).await
    }

    /// Deletes any number of keys, 1,000 per request. Missing keys count as
    /// deleted. A failed request rejects (retrying is safe); keys the service
    /// refused one by one are in `failed`.
    pub async fn delete_many(&self, items: Vec<ObjectVersion>, signal: &CancellationToken) -> Result<DeleteManyOutcome> {
        let items = validate::delete_many(items)?;
        let mut outcome = DeleteManyOutcome::default();
        for batch in items.chunks(1000) {
            let mut failed = until_cancelled(Operation::DeleteMany, &batch[0].key, signal, self.core.delete_objects(batch)).await?;
            for item in batch {
                match failed.remove(item) {
                    Some(err) => outcome.failed.push((item.key.clone(), err)),
                    None => outcome.deleted.push(item.key.clone()),
                }
            }
        }
        Ok(outcome)
    }
}
