//! The napi binding: converts between JavaScript values and the
//! `s3-storage-core` types, and nothing else. The JS layer in `lib/` turns
//! the JSON error descriptions made here into the package's error classes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use s3_storage_core::{
    BackendConfig, CancellationToken, Checksum, ConfigError, ConfigIssue, CopyOptions, Download, DownloadCloser, DownloadOptions,
    EncryptionInfo, EncryptionRequest, ListOptions, ObjectHeaders, ObjectInfo, ObjectVersion, Operation, PostOptions, PutRequest,
    RequestEvent, RequestHook, S3Backend, SignUrlOptions, SignedUrl, UploadOutcome, UploadSink,
};

/// Prefix of error messages that carry a JSON description for `lib/errors.cjs`.
const ERROR_PREFIX: &str = "S3_STORAGE_ERROR:";

fn storage_error(err: s3_storage_core::Error) -> napi::Error {
    napi::Error::new(Status::GenericFailure, format!("{ERROR_PREFIX}{}", err.to_json()))
}

fn config_json(err: &ConfigError) -> serde_json::Value {
    let mut json = err.to_json();
    json["kind"] = "configuration".into();
    json
}

fn config_error(err: ConfigError) -> napi::Error {
    napi::Error::new(Status::InvalidArg, format!("{ERROR_PREFIX}{}", config_json(&err)))
}

/// The native side of an `AbortSignal`: JS calls `abort()` when it fires,
/// and passes the handle to the call it cancels.
#[napi]
pub struct AbortHandle {
    token: CancellationToken,
}

#[napi]
impl AbortHandle {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        AbortHandle { token: CancellationToken::new() }
    }

    #[napi]
    pub fn abort(&self) {
        self.token.cancel();
    }
}

/// The token a call watches: the handle's, or one that never fires.
fn abort_token(handle: Option<&AbortHandle>) -> CancellationToken {
    handle.map(|h| h.token.clone()).unwrap_or_default()
}

/// Body bytes an upload has sent so far; JS polls it for `onProgress`.
#[napi]
pub struct TransferCounter {
    sent: Arc<AtomicU64>,
}

#[napi]
impl TransferCounter {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        TransferCounter { sent: Arc::default() }
    }

    #[napi(getter)]
    pub fn value(&self) -> f64 {
        self.sent.load(Ordering::Relaxed) as f64
    }
}

fn counter(c: Option<&TransferCounter>) -> Option<Arc<AtomicU64>> {
    c.map(|c| c.sent.clone())
}

#[napi(object)]
pub struct UploadDone {
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub checksum: Option<ChecksumValue>,
}

impl From<UploadOutcome> for UploadDone {
    fn from(o: UploadOutcome) -> Self {
        UploadDone { etag: o.etag, version_id: o.version_id, checksum: o.checksum.map(Into::into) }
    }
}

/// A checksum: `algorithm` as S3 names it, `value` base64.
#[napi(object)]
pub struct ChecksumValue {
    pub algorithm: String,
    pub value: String,
}

impl From<Checksum> for ChecksumValue {
    fn from(c: Checksum) -> Self {
        ChecksumValue { algorithm: c.algorithm.as_str().to_owned(), value: c.value }
    }
}

/// What an upload stores with the object, and on what condition (`expires`
/// already an ISO string: JS turns a Date into one).
#[napi(object)]
pub struct StoreParams {
    pub content_type: String,
    pub metadata: Option<HashMap<String, String>>,
    pub if_none_match: Option<String>,
    pub if_match: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub expires: Option<String>,
    pub storage_class: Option<String>,
    pub tags: Option<HashMap<String, String>>,
    pub checksum: Option<String>,
    pub server_side_encryption: Option<EncryptionParams>,
}

/// `serverSideEncryption` of an upload or a copy, as given (the core checks it).
#[napi(object)]
pub struct EncryptionParams {
    #[napi(js_name = "type")]
    pub kind: String,
    pub key_id: Option<String>,
    pub bucket_key: Option<bool>,
    pub key: Option<Buffer>,
}

impl From<EncryptionParams> for EncryptionRequest {
    fn from(e: EncryptionParams) -> Self {
        EncryptionRequest { kind: e.kind, key_id: e.key_id, bucket_key: e.bucket_key, key: e.key.map(|k| k.to_vec()) }
    }
}

impl From<StoreParams> for PutRequest {
    fn from(p: StoreParams) -> Self {
        PutRequest {
            content_type: p.content_type,
            metadata: p.metadata,
            if_none_match: p.if_none_match,
            if_match: p.if_match,
            headers: ObjectHeaders {
                cache_control: p.cache_control,
                content_disposition: p.content_disposition,
                content_encoding: p.content_encoding,
                content_language: p.content_language,
                expires: p.expires,
                storage_class: p.storage_class,
            },
            tags: p.tags,
            checksum: p.checksum,
            server_side_encryption: p.server_side_encryption.map(Into::into),
        }
    }
}

/// A download's range, concurrency, conditions and version.
#[napi(object)]
pub struct GetOptions {
    pub range_start: Option<f64>,
    pub range_end: Option<f64>,
    pub concurrency: Option<f64>,
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub version_id: Option<String>,
}

impl From<GetOptions> for DownloadOptions {
    fn from(o: GetOptions) -> Self {
        DownloadOptions {
            range_start: o.range_start,
            range_end: o.range_end,
            concurrency: o.concurrency,
            if_match: o.if_match,
            if_none_match: o.if_none_match,
            version_id: o.version_id,
        }
    }
}

#[napi(object)]
pub struct SignOptions {
    pub method: Option<String>,
    pub expires_in: Option<f64>,
    pub content_type: Option<String>,
    pub content_length: Option<f64>,
    pub response_content_type: Option<String>,
    pub download_filename: Option<String>,
    pub include_customer_key: Option<bool>,
}

impl From<SignOptions> for SignUrlOptions {
    fn from(o: SignOptions) -> Self {
        SignUrlOptions {
            method: o.method,
            expires_in: o.expires_in,
            content_type: o.content_type,
            content_length: o.content_length,
            response_content_type: o.response_content_type,
            download_filename: o.download_filename,
            include_customer_key: o.include_customer_key,
        }
    }
}

#[napi(object)]
pub struct ObjectEntry {
    pub key: String,
    pub size: f64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

#[napi(object)]
pub struct ListPageResult {
    pub items: Vec<ObjectEntry>,
    pub next_cursor: Option<String>,
}

#[napi(object)]
pub struct FailedDelete {
    pub key: String,
    /// The error's JSON description (see `lib/errors.cjs`).
    pub error: String,
}

/// A key of `deleteMany`, or one version of it.
#[napi(object)]
pub struct DeleteItem {
    pub key: String,
    pub version_id: Option<String>,
}

impl From<DeleteItem> for ObjectVersion {
    fn from(i: DeleteItem) -> Self {
        ObjectVersion { key: i.key, version_id: i.version_id }
    }
}

#[napi(object)]
pub struct DeleteManyResult {
    pub deleted: Vec<String>,
    pub failed: Vec<FailedDelete>,
}

#[napi(object)]
pub struct PostFormOptions {
    pub key: String,
    pub content_type: Option<String>,
    pub max_size: f64,
    pub min_size: Option<f64>,
    pub expires_in: Option<f64>,
}

impl From<PostFormOptions> for PostOptions {
    fn from(o: PostFormOptions) -> Self {
        PostOptions { key: o.key, content_type: o.content_type, max_size: o.max_size, min_size: o.min_size, expires_in: o.expires_in }
    }
}

#[napi(object)]
pub struct FormField {
    pub name: String,
    pub value: String,
}

#[napi(object)]
pub struct PresignedPostResult {
    pub url: String,
    pub fields: Vec<FormField>,
    pub expires_at: String,
}

#[napi(object)]
pub struct SignedUrlResult {
    pub url: String,
    pub expires_at: String,
    /// Headers the request must send (server-side encryption); empty when none.
    pub headers: Vec<FormField>,
}

impl From<SignedUrl> for SignedUrlResult {
    fn from(s: SignedUrl) -> Self {
        let headers = s.headers.into_iter().map(|(name, value)| FormField { name, value }).collect();
        SignedUrlResult { url: s.url, expires_at: s.expires_at, headers }
    }
}

/// `head().serverSideEncryption`.
#[napi(object)]
pub struct ObjectEncryption {
    #[napi(js_name = "type")]
    pub kind: String,
    pub key_id: Option<String>,
    pub bucket_key: Option<bool>,
}

impl From<EncryptionInfo> for ObjectEncryption {
    fn from(e: EncryptionInfo) -> Self {
        ObjectEncryption { kind: e.kind, key_id: e.key_id, bucket_key: e.bucket_key }
    }
}

#[napi(object)]
pub struct ObjectHead {
    pub size: f64,
    pub etag: Option<String>,
    pub content_type: Option<String>,
    pub last_modified: Option<String>,
    pub metadata: HashMap<String, String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub expires: Option<String>,
    pub storage_class: Option<String>,
    pub version_id: Option<String>,
    pub checksum: Option<ChecksumValue>,
    pub server_side_encryption: Option<ObjectEncryption>,
}

impl From<ObjectInfo> for ObjectHead {
    fn from(i: ObjectInfo) -> Self {
        ObjectHead {
            size: i.size as f64,
            etag: i.etag,
            content_type: i.content_type,
            last_modified: i.last_modified,
            metadata: i.metadata,
            cache_control: i.headers.cache_control,
            content_disposition: i.headers.content_disposition,
            content_encoding: i.headers.content_encoding,
            content_language: i.headers.content_language,
            expires: i.headers.expires,
            storage_class: i.headers.storage_class,
            version_id: i.version_id,
            checksum: i.checksum.map(Into::into),
            server_side_encryption: i.encryption.map(Into::into),
        }
    }
}

/// One HTTP attempt, for the `onRequest` hook (see `RequestEvent` in the core).
#[napi(object)]
pub struct NativeRequestEvent {
    pub operation: String,
    pub s3_operation: String,
    pub method: String,
    pub status: Option<u32>,
    pub attempt: u32,
    pub duration_ms: f64,
    pub request_id: Option<String>,
    pub error: Option<String>,
    pub key: Option<String>,
    pub bucket: String,
}

impl From<RequestEvent> for NativeRequestEvent {
    fn from(e: RequestEvent) -> Self {
        NativeRequestEvent {
            operation: e.operation.as_str().to_owned(),
            s3_operation: e.s3_operation,
            method: e.method,
            status: e.status.map(u32::from),
            attempt: e.attempt,
            duration_ms: e.duration.as_secs_f64() * 1000.0,
            request_id: e.request_id,
            error: e.error,
            key: e.key,
            bucket: e.bucket,
        }
    }
}

/// The JS hook: called on the JS thread without blocking the request's
/// thread, and weak (it does not keep the process alive). JS catches what it throws.
type RequestCallback = ThreadsafeFunction<NativeRequestEvent, (), NativeRequestEvent, Status, false, true>;

fn request_hook(callback: Option<RequestCallback>) -> Option<RequestHook> {
    let callback = callback?;
    Some(Arc::new(move |event: RequestEvent| {
        callback.call(event.into(), ThreadsafeFunctionCallMode::NonBlocking);
    }))
}

#[napi]
pub struct NativeBackend {
    backend: S3Backend,
}

#[napi]
impl NativeBackend {
    /// `options`: S3BackendOptions without `errorClasses` and `onRequest`, as
    /// plain JSON; `vars`: the process's proxy variables; `onRequest`: the hook.
    #[napi(constructor)]
    pub fn new(
        options: serde_json::Value,
        vars: Option<HashMap<String, String>>,
        #[napi(ts_arg_type = "(event: NativeRequestEvent) => void")] on_request: Option<RequestCallback>,
    ) -> Result<Self> {
        let config = BackendConfig::from_options_and_env(&options, &vars.unwrap_or_default()).map_err(config_error)?;
        Ok(NativeBackend { backend: S3Backend::with_request_hook(config, request_hook(on_request)) })
    }

    /// From the host's `STORAGE_*` variables (and the proxy variables); `overrides` win.
    #[napi(factory)]
    pub fn from_env(
        env: HashMap<String, String>,
        overrides: serde_json::Value,
        #[napi(ts_arg_type = "(event: NativeRequestEvent) => void")] on_request: Option<RequestCallback>,
    ) -> Result<Self> {
        let config = BackendConfig::from_env(&env, &overrides).map_err(config_error)?;
        Ok(NativeBackend { backend: S3Backend::with_request_hook(config, request_hook(on_request)) })
    }

    /// What `util.inspect` and `JSON.stringify` show of a backend: no secrets.
    #[napi(ts_return_type = "Record<string, unknown>")]
    pub fn describe(&self) -> serde_json::Value {
        self.backend.config().describe()
    }

    /// Uploads a Buffer. With `copy` false the bytes are not copied (the
    /// caller must not change them until the promise settles); workers pass
    /// true, because a terminated worker frees its memory under a transfer.
    #[napi(ts_return_type = "Promise<UploadDone>")]
    #[allow(clippy::too_many_arguments)] // one positional argument per JS parameter
    pub fn put_buffer<'env>(
        &self,
        env: &'env Env,
        key: String,
        body: Buffer,
        content_type: String,
        metadata: Option<HashMap<String, String>>,
        params: Option<StoreParams>,
        abort: Option<&AbortHandle>,
        copy: Option<bool>,
        progress: Option<&TransferCounter>,
    ) -> Result<PromiseRaw<'env, UploadDone>> {
        let backend = self.backend.clone();
        let cancel = abort_token(abort);
        let data = owned_bytes(body, copy.unwrap_or(false));
        let sent = counter(progress);
        spawn(env, move || async move {
            // Only a type and metadata (the common upload) cross as two plain
            // arguments; anything more comes as `params`, which holds them too.
            let request = params.map_or_else(|| PutRequest { content_type, metadata, ..PutRequest::default() }, PutRequest::from);
            let options = backend.put_options(&key, request).map_err(storage_error)?;
            let out = backend.put_bytes(key, options, data, &cancel, sent).await.map_err(storage_error)?;
            Ok(out.into())
        })
    }

    /// Validates, then starts a streaming upload fed by `NativeUpload.write`.
    #[napi(ts_return_type = "Promise<NativeUpload>")]
    #[allow(clippy::too_many_arguments)] // one positional argument per JS parameter
    pub fn start_upload<'env>(
        &self,
        env: &'env Env,
        key: String,
        params: StoreParams,
        content_length: Option<f64>,
        abort: Option<&AbortHandle>,
        progress: Option<&TransferCounter>,
    ) -> Result<PromiseRaw<'env, NativeUpload>> {
        let backend = self.backend.clone();
        let cancel = abort_token(abort);
        let sent = counter(progress);
        spawn(env, move || async move {
            let options = backend.put_options(&key, params.into()).map_err(storage_error)?;
            let sink = backend.start_upload(key, options, content_length, &cancel, sent).map_err(storage_error)?;
            Ok(NativeUpload { sink: Arc::new(sink) })
        })
    }

    /// A small object arrives whole, as a plain object (no native reader to
    /// keep, call or collect); a larger one as a [`NativeDownload`].
    #[napi(ts_return_type = "Promise<WholeDownload | NativeDownload>")]
    pub fn open_download<'env>(
        &self,
        env: &'env Env,
        key: String,
        abort: Option<&AbortHandle>,
        options: Option<GetOptions>,
    ) -> Result<PromiseRaw<'env, Either<WholeDownload, NativeDownload>>> {
        let backend = self.backend.clone();
        let cancel = abort_token(abort);
        let options = options.map(DownloadOptions::from).unwrap_or_default();
        spawn(env, move || async move {
            let mut download = backend.download(&key, &options, &cancel).await.map_err(storage_error)?;
            let content_length = download.content_length.map(|n| n as f64);
            if let Some(body) = download.read_small(SMALL_DOWNLOAD_BYTES).await.map_err(storage_error)? {
                let (content_type, etag) = (download.content_type.take(), download.etag.take());
                return Ok(Either::A(WholeDownload { body: CopiedChunk(body), content_length, content_type, etag }));
            }
            Ok(Either::B(NativeDownload::from(download)))
        })
    }

    /// `downloadBuffer`: a small object's body alone (nothing else crosses
    /// to JavaScript); a larger one as a [`NativeDownload`] to read to its end.
    #[napi(ts_return_type = "Promise<Buffer | NativeDownload>")]
    pub fn download_whole<'env>(
        &self,
        env: &'env Env,
        key: String,
        abort: Option<&AbortHandle>,
        options: Option<GetOptions>,
    ) -> Result<PromiseRaw<'env, Either<CopiedChunk, NativeDownload>>> {
        let backend = self.backend.clone();
        let cancel = abort_token(abort);
        let options = options.map(DownloadOptions::from).unwrap_or_default();
        spawn(env, move || async move {
            let mut download = backend.download(&key, &options, &cancel).await.map_err(storage_error)?;
            match download.read_small(SMALL_DOWNLOAD_BYTES).await.map_err(storage_error)? {
                Some(body) => Ok(Either::A(CopiedChunk(body))),
                None => Ok(Either::B(NativeDownload::from(download))),
            }
        })
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn delete<'env>(
        &self,
        env: &'env Env,
        key: String,
        abort: Option<&AbortHandle>,
        version_id: Option<String>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let backend = self.backend.clone();
        let cancel = abort_token(abort);
        spawn(env, move || async move { backend.delete(&key, version_id, &cancel).await.map_err(storage_error) })
    }

    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn exists<'env>(&self, env: &'env Env, key: String, abort: Option<&AbortHandle>) -> Result<PromiseRaw<'env, bool>> {
        let backend = self.backend.clone();
        let cancel = abort_token(abort);
        spawn(env, move || async move { backend.exists(&key, &cancel).await.map_err(storage_error) })
    }

    #[napi(ts_return_type = "Promise<ObjectHead>")]
    pub fn head<'env>(&self, env: &'env Env, key: String, abort: Option<&AbortHandle>) -> Result<PromiseRaw<'env, ObjectHead>> {
        let backend = self.backend.clone();
        let cancel = abort_token(abort);
        spawn(env, move || async move {
            let info = backend.head(&key, &cancel).await.map_err(storage_error)?;
            Ok(ObjectHead::from(info))
        })
    }

    /// Signs at once with static credentials; `null` means "use signUrl"
    /// (credentials from the default chain need an async step).
    #[napi]
    pub fn sign_url_now(&self, key: String, options: SignOptions) -> Result<Option<SignedUrlResult>> {
        let signed = self.backend.sign_url_now(&key, &options.into()).map_err(storage_error)?;
        Ok(signed.map(SignedUrlResult::from))
    }

    #[napi(ts_return_type = "Promise<SignedUrlResult>")]
    pub fn sign_url<'env>(&self, env: &'env Env, key: String, options: SignOptions) -> Result<PromiseRaw<'env, SignedUrlResult>> {
        let backend = self.backend.clone();
        spawn(env, move || async move {
            let signed = backend.sign_url(&key, &options.into()).await.map_err(storage_error)?;
            Ok(SignedUrlResult::from(signed))
        })
    }

    #[napi(ts_return_type = "Promise<PresignedPostResult>")]
    pub fn presign_post<'env>(&self, env: &'env Env, options: PostFormOptions) -> Result<PromiseRaw<'env, PresignedPostResult>> {
        let backend = self.backend.clone();
        let options = PostOptions::from(options);
        spawn(env, move || async move {
            let form = backend.presign_post(&options).await.map_err(storage_error)?;
            Ok(PresignedPostResult {
                url: form.url,
                fields: form.fields.into_iter().map(|(name, value)| FormField { name, value }).collect(),
                expires_at: form.expires_at,
            })
        })
    }

    #[napi(ts_return_type = "Promise<UploadDone>")]
    #[allow(clippy::too_many_arguments)] // one positional argument per JS parameter
    pub fn copy<'env>(
        &self,
        env: &'env Env,
        from_key: String,
        to_key: String,
        content_type: Option<String>,
        metadata: Option<HashMap<String, String>>,
        abort: Option<&AbortHandle>,
        server_side_encryption: Option<EncryptionParams>,
    ) -> Result<PromiseRaw<'env, UploadDone>> {
        let backend = self.backend.clone();
        let cancel = abort_token(abort);
        let options = CopyOptions { content_type, metadata, server_side_encryption: server_side_encryption.map(Into::into) };
        spawn(env, move || async move {
            let out = backend.copy(&from_key, &to_key, options, &cancel).await.map_err(storage_error)?;
            Ok(out.into())
        })
    }

    #[napi(ts_return_type = "Promise<ListPageResult>")]
    pub fn list<'env>(
        &self,
        env: &'env Env,
        prefix: Option<String>,
        cursor: Option<String>,
        limit: Option<f64>,
        abort: Option<&AbortHandle>,
    ) -> Result<PromiseRaw<'env, ListPageResult>> {
        let backend = self.backend.clone();
        let cancel = abort_token(abort);
        spawn(env, move || async move {
            let page = backend.list(&ListOptions { prefix, cursor, limit }, &cancel).await.map_err(storage_error)?;
            Ok(ListPageResult {
                items: page
                    .items
                    .into_iter()
                    .map(|o| ObjectEntry { key: o.key, size: o.size as f64, etag: o.etag, last_modified: o.last_modified })
                    .collect(),
                next_cursor: page.next_cursor,
            })
        })
    }

    #[napi(ts_return_type = "Promise<DeleteManyResult>")]
    pub fn delete_many<'env>(
        &self,
        env: &'env Env,
        items: Vec<DeleteItem>,
        abort: Option<&AbortHandle>,
    ) -> Result<PromiseRaw<'env, DeleteManyResult>> {
        let backend = self.backend.clone();
        let cancel = abort_token(abort);
        let items = items.into_iter().map(Into::into).collect();
        spawn(env, move || async move {
            let out = backend.delete_many(items, &cancel).await.map_err(storage_error)?;
            Ok(DeleteManyResult {
                deleted: out.deleted,
                failed: out.failed.into_iter().map(|(key, e)| FailedDelete { key, error: e.to_json().to_string() }).collect(),
            })
        })
    }
}

impl Drop for NativeUpload {
    /// The JS object is gone (collected, or its worker terminated): an
    /// unfinished upload is aborted rather than left running.
    fn drop(&mut self) {
        self.sink.cancel();
    }
}

impl Drop for NativeDownload {
    /// Frees the connection even while a read is pending.
    fn drop(&mut self) {
        self.closer.close();
    }
}

/// A Buffer as `Bytes`: zero-copy, or copied into Rust memory.
fn owned_bytes(buffer: Buffer, copy: bool) -> Bytes {
    if copy {
        Bytes::copy_from_slice(&buffer)
    } else {
        Bytes::from_owner(buffer)
    }
}

// Every async method below is a sync method that moves owned state (Arcs)
// into the future: an `async fn(&self)` would borrow the JS object, which a
// terminated worker frees while the future still runs.

/// The writing end of a streaming upload.
#[napi]
pub struct NativeUpload {
    sink: Arc<UploadSink>,
}

#[napi]
impl NativeUpload {
    /// Resolves when the engine accepted the chunk (backpressure). `copy`:
    /// see `NativeBackend.putBuffer`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn write<'env>(&self, env: &'env Env, chunk: Buffer, copy: Option<bool>) -> Result<PromiseRaw<'env, ()>> {
        let sink = self.sink.clone();
        let data = owned_bytes(chunk, copy.unwrap_or(false));
        spawn(env, move || async move { sink.write(data).await.map_err(storage_error) })
    }

    #[napi(ts_return_type = "Promise<UploadDone>")]
    pub fn finish<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, UploadDone>> {
        let sink = self.sink.clone();
        spawn(env, move || async move {
            let out = sink.finish().await.map_err(storage_error)?;
            Ok(out.into())
        })
    }

    /// Resolves once nothing of the upload is left on the server.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn abort<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let sink = self.sink.clone();
        spawn(env, move || async move {
            sink.abort().await;
            Ok(())
        })
    }
}

/// A downloaded chunk handed to JS as a V8-owned copy. V8 counts the bytes
/// of such a buffer, so its garbage collector keeps pace with a fast
/// download; an external buffer over Rust memory is invisible to it and
/// piles up (measured: RSS +170 MiB over a 512 MiB download). The Rust
/// buffer is freed as soon as the copy is made.
pub struct CopiedChunk(Vec<u8>);

impl TypeName for CopiedChunk {
    fn type_name() -> &'static str {
        "Buffer"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for CopiedChunk {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        let mut data = std::ptr::null_mut();
        let mut out = std::ptr::null_mut();
        let status = unsafe { napi::sys::napi_create_buffer_copy(env, val.0.len(), val.0.as_ptr().cast(), &mut data, &mut out) };
        if status != napi::sys::Status::napi_ok {
            return Err(napi::Error::new(Status::from(status), "cannot create a Buffer for a downloaded chunk"));
        }
        Ok(out)
    }
}

/// Spawns the future `make` returns on napi's runtime, created and boxed at
/// its first poll on the runtime's thread: what napi moves around on the JS
/// thread (into its wrapper, into tokio's task) is then only the captured
/// values, not the future's whole state machine (kilobytes for a request),
/// and the state machine is allocated and freed on the same thread.
fn spawn<'env, T, Fut>(env: &'env Env, make: impl FnOnce() -> Fut + Send + 'static) -> Result<PromiseRaw<'env, T>>
where
    T: 'static + Send + ToNapiValue,
    Fut: std::future::Future<Output = Result<T>> + Send + 'static,
{
    env.spawn_future(async move { Box::pin(make()).await })
}

/// Objects up to this size are read whole before `openDownload` resolves.
const SMALL_DOWNLOAD_BYTES: u64 = 256 * 1024;

/// A small object's download: its whole body and its headers.
#[napi(object, object_from_js = false)]
pub struct WholeDownload {
    pub body: CopiedChunk,
    pub content_length: Option<f64>,
    pub content_type: Option<String>,
    pub etag: Option<String>,
}

/// The reading end of a download.
#[napi]
pub struct NativeDownload {
    /// Stops the reader ahead: cancelled by `close()` only (an abort closes
    /// the download itself, through its signal).
    stop: CancellationToken,
    /// Chunks read ahead (see [`READ_AHEAD_CHUNKS`]).
    chunks: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<ReadAhead>>>,
    /// The download and the sending end of `chunks` until the first `read()`
    /// starts the reader ahead: nothing of the body is read before the
    /// consumer asks, so a stream that is opened and never read pulls no data.
    unstarted: std::sync::Mutex<Option<(Download, tokio::sync::mpsc::Sender<ReadAhead>)>>,
    closer: DownloadCloser,
    content_length: Option<f64>,
    content_type: Option<String>,
    etag: Option<String>,
}

/// A large download is read ahead of JavaScript by up to this many chunks
/// (each up to [`READ_AHEAD_CHUNK_BYTES`]), so the connection keeps flowing
/// while the reader handles a chunk (a writer to disk, a hash), and the
/// server sends in large pieces; beyond that, the socket's flow control
/// holds the server back.
const READ_AHEAD_CHUNKS: usize = 4;
const READ_AHEAD_CHUNK_BYTES: usize = 1024 * 1024;

/// A read's answer, handed from the reader ahead to `NativeDownload.read`.
type ReadAhead = std::result::Result<Option<Vec<u8>>, s3_storage_core::Error>;

impl From<Download> for NativeDownload {
    /// Holds the download until the first `read()` (see `unstarted`).
    fn from(download: Download) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel::<ReadAhead>(READ_AHEAD_CHUNKS);
        NativeDownload {
            content_length: download.content_length.map(|n| n as f64),
            content_type: download.content_type.clone(),
            etag: download.etag.clone(),
            closer: download.closer(),
            stop: CancellationToken::new(),
            chunks: Arc::new(tokio::sync::Mutex::new(rx)),
            unstarted: std::sync::Mutex::new(Some((download, tx))),
        }
    }
}

impl NativeDownload {
    /// The download and its channel if the reader ahead has not started (once).
    fn take_unstarted(&self) -> Option<(Download, tokio::sync::mpsc::Sender<ReadAhead>)> {
        self.unstarted.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Reads `download` ahead into `tx` until its end, an error, or `stop`
/// (on the runtime this is called from).
fn read_ahead(mut download: Download, tx: tokio::sync::mpsc::Sender<ReadAhead>, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            // A close ends a read in progress (the closer) and a wait for
            // room ahead (`stop`); a reader that is gone ends the send.
            let read = download.read(READ_AHEAD_CHUNK_BYTES).await;
            let last = !matches!(read, Ok(Some(_)));
            let sent = tokio::select! {
                sent = tx.send(read) => sent.is_ok(),
                _ = stop.cancelled() => false,
            };
            if !sent || last {
                break;
            }
        }
        download.close();
    });
}

#[napi]
impl NativeDownload {
    /// The next chunk read ahead (up to [`READ_AHEAD_CHUNK_BYTES`]); `null` at the end.
    #[napi(ts_return_type = "Promise<Buffer | null>")]
    pub fn read<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Option<CopiedChunk>>> {
        let chunks = self.chunks.clone();
        let unstarted = self.take_unstarted();
        let stop = self.stop.clone();
        spawn(env, move || async move {
            if let Some((download, tx)) = unstarted {
                read_ahead(download, tx, stop);
            }
            match chunks.lock().await.recv().await {
                Some(Ok(Some(chunk))) => Ok(Some(CopiedChunk(chunk))),
                Some(Ok(None)) | None => Ok(None),
                Some(Err(e)) => Err(storage_error(e)),
            }
        })
    }

    /// Releases the connection now, even if a read is in flight.
    #[napi]
    pub fn close(&self) {
        self.closer.close();
        self.stop.cancel();
        // A download never read is dropped here (its connection with it).
        drop(self.take_unstarted());
    }

    #[napi(getter)]
    pub fn content_length(&self) -> Option<f64> {
        self.content_length
    }

    #[napi(getter)]
    pub fn content_type(&self) -> Option<String> {
        self.content_type.clone()
    }

    #[napi(getter)]
    pub fn etag(&self) -> Option<String> {
        self.etag.clone()
    }
}

/// `<groupId>/<yyyy>/<mm>/<uuid>[.<ext>]`; `date_ms` is a JS timestamp.
#[napi]
pub fn generate_storage_key(group_id: String, filename: Option<String>, date_ms: f64) -> Result<String> {
    let date = chrono::DateTime::from_timestamp_millis(date_ms as i64).filter(|_| date_ms.is_finite()).ok_or_else(|| {
        storage_error(s3_storage_core::Error::invalid(s3_storage_core::Operation::GenerateKey, &group_id, "date", "must be a valid Date"))
    })?;
    s3_storage_core::keys::generate_storage_key(&group_id, filename.as_deref(), date).map_err(storage_error)
}

/// The JSON description of an error the JS layer found (a wrong JS type, an
/// aborted signal, a failed source), worded by the core like every other.
#[napi]
pub fn describe_error(reason: String, operation: String, key: String, field: Option<String>, message: String) -> Result<String> {
    let operation: Operation = operation.parse().map_err(|e: String| napi::Error::new(Status::InvalidArg, e))?;
    Ok(s3_storage_core::Error::from_parts(&reason, operation, &key, field.as_deref(), &message).to_json().to_string())
}

/// The HTTP status for an error's `details.reason` (the package's `StorageError`).
#[napi]
pub fn status_for_reason(reason: String) -> u32 {
    s3_storage_core::error::status_for_reason(&reason) as u32
}

/// The JSON description of a configuration error the JS layer found
/// (unreadable options, wrong error classes).
#[napi]
pub fn describe_config_error(issues: Vec<ConfigIssueInput>) -> String {
    let issues = issues.into_iter().map(|i| ConfigIssue { field: i.field, message: i.message }).collect();
    config_json(&ConfigError { issues }).to_string()
}

#[napi(object)]
pub struct ConfigIssueInput {
    pub field: String,
    pub message: String,
}
