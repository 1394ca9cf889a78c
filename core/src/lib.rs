//! S3 storage backend core: configuration, keys, typed errors and the
//! transfer engine, on aws-sdk-s3. It has no Node types; the napi binding in
//! the parent crate only converts.
//!
//! Dependencies run one way: [`S3Backend`] (backend.rs, a facade) checks
//! arguments (validate.rs) and calls the transfers (upload.rs, copy.rs,
//! download.rs, parallel.rs), which share one multipart implementation
//! (multipart.rs); every S3 request is built in request.rs, on the client
//! from client.rs, with errors classified in classify.rs.
#![warn(missing_docs, unreachable_pub)]
// `Error` carries what the service said (status, code, request id, text) so
// that a caller can act on it; it is built once per failed call and turned
// into a JS error, so its size on the error path does not matter.
#![allow(clippy::result_large_err)]

mod backend;
mod body;
mod checksum;
mod classify;
mod client;
pub mod config;
mod copy;
mod direct;
mod download;
mod encryption;
pub mod error;
pub mod keys;
mod multipart;
mod observe;
mod parallel;
mod part_buffer;
pub mod post_policy;
mod presign;
mod progress;
pub mod proxy;
mod request;
mod resume;
mod retry;
mod time;
mod types;
mod upload;
mod validate;
mod verify;

pub use backend::S3Backend;
pub use checksum::{Checksum, ChecksumAlgorithm};
pub use config::{BackendConfig, CaCertificates, ConfigError, ConfigIssue, MultipartConfig, ProxySettings, RetryConfig, TimeoutConfig};
pub use download::{Download, DownloadCloser};
pub use encryption::{CustomerKey, Encryption, EncryptionInfo, EncryptionRequest};
pub use error::{Error, Operation, Result};
pub use observe::{RequestEvent, RequestHook};
pub use tokio_util::sync::CancellationToken;
pub use types::{
    ByteRange, CopyOptions, DeleteManyOutcome, DownloadOptions, GetConditions, ListOptions, ListPage, ObjectHeaders, ObjectInfo,
    ObjectSummary, ObjectVersion, PostOptions, PresignedForm, PutOptions, PutRequest, SignMethod, SignUrlOptions, SignedUrl, UploadOutcome,
    WriteCondition,
};
pub use upload::UploadSink;
pub use validate::MAX_DOWNLOAD_CONCURRENCY;
