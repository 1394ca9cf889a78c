//! The data the backend's operations take and return. Plain values with no
//! behaviour, kept apart so that every module can use them without
//! depending on the modules that produce them.

use std::collections::HashMap;

/// What is stored with an object: validated by [`crate::S3Backend`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// `Content-Type` of the object.
    pub content_type: String,
    /// User metadata (`x-amz-meta-*`), names as given.
    pub metadata: HashMap<String, String>,
}

/// The result of a stored object: an upload or a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOutcome {
    /// The new object's ETag, quoted as S3 sends it.
    pub etag: Option<String>,
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
}

/// A signed URL and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl {
    /// The URL, with its signature in the query.
    pub url: String,
    /// ISO 8601, millisecond precision, UTC (like JavaScript's `toISOString`).
    pub expires_at: String,
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
}

/// Options of a server-side copy.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Replaces the source's content type.
    pub content_type: Option<String>,
    /// Replaces the source's metadata.
    pub metadata: Option<HashMap<String, String>>,
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
