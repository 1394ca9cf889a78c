//! The data the backend's operations take and return. Plain values with no
//! behaviour, kept apart so that every module can use them without
//! depending on the modules that produce them.

use std::collections::HashMap;

use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::encryption::{Encryption, EncryptionInfo, EncryptionRequest};

/// What an upload asks to store with an object and on what condition, as
/// the caller gave it (checked into [`PutOptions`] by the backend).
#[derive(Debug, Clone, Default)]
pub struct PutRequest {
    /// `Content-Type` of the object.
    pub content_type: String,
    /// User metadata (`x-amz-meta-*`).
    pub metadata: Option<HashMap<String, String>>,
    /// Store only if no object is at the key: `"*"`.
    pub if_none_match: Option<String>,
    /// Store only if the object at the key has this ETag.
    pub if_match: Option<String>,
    /// Headers stored with the object.
    pub headers: ObjectHeaders,
    /// Tags (`x-amz-tagging`).
    pub tags: Option<HashMap<String, String>>,
    /// An end-to-end checksum algorithm: `CRC32`, `CRC32C`, `CRC64NVME` or `SHA256`.
    pub checksum: Option<String>,
    /// Server-side encryption instead of the backend's `serverSideEncryption`.
    pub server_side_encryption: Option<EncryptionRequest>,
}

/// Standard headers stored with an object and returned with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectHeaders {
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Expires`, ISO 8601.
    pub expires: Option<String>,
    /// `x-amz-storage-class`, e.g. `STANDARD_IA`.
    pub storage_class: Option<String>,
}

/// The condition a write is made on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    /// `If-None-Match: *`: only if no object is at the key.
    Absent,
    /// `If-Match: <etag>`: only if the object at the key has this ETag.
    Matches(String),
}

/// What is stored with an object: validated by [`crate::S3Backend`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// `Content-Type` of the object.
    pub content_type: String,
    /// User metadata (`x-amz-meta-*`), names as given.
    pub metadata: HashMap<String, String>,
    /// Stored only on this condition.
    pub condition: Option<WriteCondition>,
    /// Standard headers stored with the object (`expires` as RFC 3339).
    pub headers: ObjectHeaders,
    /// Tags, as the `x-amz-tagging` header's URL-encoded query.
    pub tagging: Option<String>,
    /// Computed as the bytes pass and sent for the service to verify.
    pub checksum: Option<ChecksumAlgorithm>,
    /// Server-side encryption asked for by the call; `None`: the backend's.
    pub encryption: Option<Encryption>,
}

/// The result of a stored object: an upload or a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOutcome {
    /// The new object's ETag, quoted as S3 sends it.
    pub etag: Option<String>,
    /// The new object's version, on a versioned bucket.
    pub version_id: Option<String>,
    /// The object's checksum, when one was asked for.
    pub checksum: Option<Checksum>,
}

/// HTTP method of a signed URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignMethod {
    /// A download URL.
    #[default]
    Get,
    /// An upload URL.
    Put,
}

impl SignMethod {
    /// The HTTP method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignMethod::Get => "GET",
            SignMethod::Put => "PUT",
        }
    }
}

/// Options of a signed URL, as the caller gave them (checked by the backend).
#[derive(Debug, Clone, Default)]
pub struct SignUrlOptions {
    /// `"GET"` or `"PUT"`; GET when absent.
    pub method: Option<String>,
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
    /// With SSE-C: sign the URL anyway and hand out the headers to send
    /// with it, the key among them (else such a URL is refused).
    pub include_customer_key: Option<bool>,
}

/// A signed URL and when it stops working.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedUrl {
    /// The URL, with its signature in the query.
    pub url: String,
    /// ISO 8601, millisecond precision, UTC (like JavaScript's `toISOString`).
    pub expires_at: String,
    /// Headers the request must carry as signed (server-side encryption),
    /// names in lower case; empty when none. With SSE-C they hold the key.
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for SignedUrl {
    /// Header names only: with SSE-C a value is the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("SignedUrl").field("url", &self.url).field("expires_at", &self.expires_at).field("headers", &names).finish()
    }
}

/// What HeadObject tells of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// ETag, quoted.
    pub etag: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// ISO 8601, milliseconds, UTC.
    pub last_modified: Option<String>,
    /// User metadata; S3 returns the names lower-cased.
    pub metadata: HashMap<String, String>,
    /// Standard headers stored with the object (`expires` as ISO 8601).
    pub headers: ObjectHeaders,
    /// The version read, on a versioned bucket.
    pub version_id: Option<String>,
    /// The checksum stored with the object, if any.
    pub checksum: Option<Checksum>,
    /// How the service says the object is encrypted, when it says.
    pub encryption: Option<EncryptionInfo>,
}

/// Bytes `start..=end` of an object (`end` absent: to the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte, from 0.
    pub start: u64,
    /// Last byte, inclusive.
    pub end: Option<u64>,
}

impl ByteRange {
    /// The `Range` header's value.
    pub fn header(&self) -> String {
        match self.end {
            Some(end) => format!("bytes={}-{end}", self.start),
            None => format!("bytes={}-", self.start),
        }
    }
}

/// Options of a download, as the caller gave them (checked by the backend).
#[derive(Debug, Clone, Default)]
pub struct DownloadOptions {
    /// First byte of a range, from 0.
    pub range_start: Option<f64>,
    /// Last byte of a range, inclusive.
    pub range_end: Option<f64>,
    /// Ranged GETs at once for a large object (1 = one GET).
    pub concurrency: Option<f64>,
    /// Only if the object has this ETag (else `precondition_failed`).
    pub if_match: Option<String>,
    /// Only if the object's ETag differs (else `not_modified`).
    pub if_none_match: Option<String>,
    /// This version of the object.
    pub version_id: Option<String>,
}

/// Conditions and version of a GET, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetConditions {
    /// `If-Match`.
    pub if_match: Option<String>,
    /// `If-None-Match`.
    pub if_none_match: Option<String>,
    /// `versionId`.
    pub version_id: Option<String>,
    /// `if_match` is the ETag of an earlier answer of the same download (a
    /// 412 then means the object changed during it).
    pub pinned: bool,
}

/// Options of a server-side copy.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Replaces the source's content type.
    pub content_type: Option<String>,
    /// Replaces the source's metadata.
    pub metadata: Option<HashMap<String, String>>,
    /// Server-side encryption of the copy instead of the backend's.
    pub server_side_encryption: Option<EncryptionRequest>,
}

/// Options of one page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Only keys that start with this.
    pub prefix: Option<String>,
    /// A `next_cursor` from an earlier page.
    pub cursor: Option<String>,
    /// Keys per page, 1–1000.
    pub limit: Option<f64>,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    /// The object's key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag, quoted.
    pub etag: Option<String>,
    /// ISO 8601, milliseconds, UTC.
    pub last_modified: Option<String>,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// The objects, in key order.
    pub items: Vec<ObjectSummary>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// An object of `delete_many`: a key, or one version of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectVersion {
    /// The key.
    pub key: String,
    /// That version only (a versioned bucket); `None`: the key.
    pub version_id: Option<String>,
}

/// What `delete_many` did with each key.
#[derive(Debug, Clone, Default)]
pub struct DeleteManyOutcome {
    /// Keys that are gone (missing keys included).
    pub deleted: Vec<String>,
    /// Keys the service refused, with why.
    pub failed: Vec<(String, crate::Error)>,
}

/// Options of a browser form upload (POST Object).
#[derive(Debug, Clone)]
pub struct PostOptions {
    /// The key the form uploads to.
    pub key: String,
    /// The exact Content-Type the form must send.
    pub content_type: Option<String>,
    /// Largest accepted file, bytes.
    pub max_size: f64,
    /// Smallest accepted file, bytes (0 when absent).
    pub min_size: Option<f64>,
    /// Seconds; the backend's default when absent.
    pub expires_in: Option<f64>,
}

/// A signed browser form.
#[derive(Debug, Clone)]
pub struct PresignedForm {
    /// Where the form posts to.
    pub url: String,
    /// Form fields in order; the file goes last.
    pub fields: Vec<(String, String)>,
    /// ISO 8601, milliseconds, UTC.
    pub expires_at: String,
}
