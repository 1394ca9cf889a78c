//! S3 storage backend core: configuration, keys, typed errors and the
//! transfer engine, on aws-sdk-s3. It has no Node types; the napi binding in
//! the parent crate only converts.

mod backend;
mod body;
mod classify;
mod client;
mod copy;
pub mod config;
mod download;
pub mod error;
pub mod keys;
mod parallel;
mod part_buffer;
pub mod post_policy;
mod presign;
mod progress;
mod retry;
mod upload;

pub use backend::{
    ByteRange, CopyOptions, DeleteManyOutcome, ListOptions, ListPage, ObjectInfo, ObjectSummary, PostOptions, PresignedForm, S3Backend,
    SignMethod, SignUrlOptions, SignedUrl,
};
pub use config::{BackendConfig, ConfigError, ConfigIssue, MultipartConfig, RetryConfig, TimeoutConfig};
pub use tokio_util::sync::CancellationToken;
pub use download::{Download, DownloadCloser};
pub use error::{Error, Operation, Result};
pub use upload::{PutOptions, UploadOutcome, UploadSink};
