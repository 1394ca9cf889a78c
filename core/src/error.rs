//! Typed errors: one variant per thing a caller can act on, each naming the
//! operation and the key it concerns. Every message, reason and HTTP status
//! the package reports is worded here, once: the JS layer only turns the
//! description [`Error::to_json`] makes into the host's (or its own) classes.
//! Messages never carry credentials.

use std::fmt;
use std::str::FromStr;

/// The public operation an error came from (`details.operation` in Node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `upload`: storing an object.
    Upload,
    /// `download`: reading an object's body.
    Download,
    /// `delete`: removing one object.
    Delete,
    /// `exists`: checking whether an object exists.
    Exists,
    /// `head`: reading an object's metadata.
    Head,
    /// `getSignedUrl`: presigning a GET or PUT URL.
    SignUrl,
    /// `generateStorageKey`: making a new key for a group.
    GenerateKey,
    /// `copy`: copying an object within the bucket.
    Copy,
    /// `list`: listing keys under a prefix.
    List,
    /// `deleteMany`: removing objects in batches.
    DeleteMany,
    /// `createPresignedPost`: signing a browser upload form.
    PresignPost,
}

impl Operation {
    /// Every operation, for [`FromStr`].
    const ALL: [Operation; 11] = [
        Operation::Upload,
        Operation::Download,
        Operation::Delete,
        Operation::Exists,
        Operation::Head,
        Operation::SignUrl,
        Operation::GenerateKey,
        Operation::Copy,
        Operation::List,
        Operation::DeleteMany,
        Operation::PresignPost,
    ];

    /// The public method's name (`details.operation` in Node).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Upload => "upload",
            Operation::Download => "download",
            Operation::Delete => "delete",
            Operation::Exists => "exists",
            Operation::Head => "head",
            Operation::SignUrl => "getSignedUrl",
            Operation::GenerateKey => "generateStorageKey",
            Operation::Copy => "copy",
            Operation::List => "list",
            Operation::DeleteMany => "deleteMany",
            Operation::PresignPost => "createPresignedPost",
        }
    }
}

impl FromStr for Operation {
    type Err = String;

    /// Parses a public method's name, e.g. `"getSignedUrl"`.
    fn from_str(name: &str) -> Result<Self, String> {
        Operation::ALL.into_iter().find(|op| op.as_str() == name).ok_or_else(|| format!("unknown operation {name:?}"))
    }
}

impl fmt::Display for Operation {
    /// The verb used in messages: "Cannot {verb} \"key\": ...".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Upload => "upload",
            Operation::Download => "download",
            Operation::Delete => "delete",
            Operation::Exists => "check",
            Operation::Head => "read the metadata of",
            Operation::SignUrl => "sign a URL for",
            Operation::GenerateKey => "generate a key for group",
            Operation::Copy => "copy",
            Operation::List => "list",
            Operation::DeleteMany => "delete",
            Operation::PresignPost => "sign an upload form for",
        })
    }
}

/// What the service (or the network) said, kept for diagnosis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceInfo {
    /// HTTP status of the service's answer, when there was one.
    pub status: Option<u16>,
    /// S3 error code, e.g. `SignatureDoesNotMatch`.
    pub code: Option<String>,
    /// S3 request id (`x-amz-request-id`), for the provider's support.
    pub request_id: Option<String>,
    /// Human-readable cause (service message or transport error chain).
    pub detail: String,
}

impl ServiceInfo {
    /// Only a human-readable cause: no answer from the service.
    pub fn detail(detail: impl Into<String>) -> Self {
        ServiceInfo { detail: detail.into(), ..Default::default() }
    }
}

/// Why an operation failed: one variant per kind of failure a caller can
/// act on. `Display` is the message; [`Error::to_json`] the full description.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The object does not exist (`NoSuchKey`, or a 404 without a code).
    #[error("Cannot {operation} \"{key}\": the object does not exist in bucket \"{bucket}\"")]
    NotFound {
        /// The public operation that failed.
        operation: Operation,
        /// The key concerned (for `list`, the prefix).
        key: String,
        /// The bucket addressed.
        bucket: String,
    },

    /// The bucket does not exist (`NoSuchBucket`).
    #[error("Cannot {operation} \"{key}\": bucket \"{bucket}\" does not exist ({})", .info.detail)]
    BucketNotFound {
        /// The public operation that failed.
        operation: Operation,
        /// The key concerned (for `list`, the prefix).
        key: String,
        /// The bucket addressed.
        bucket: String,
        /// What the service or the network said.
        info: ServiceInfo,
    },

    /// No answer came (refused, reset, timed out) or the service answered with
    /// a 5xx or throttling error such as `SlowDown`.
    #[error("Cannot {operation} \"{key}\": the S3 service is unavailable ({})", .info.detail)]
    Unavailable {
        /// The public operation that failed.
        operation: Operation,
        /// The key concerned (for `list`, the prefix).
        key: String,
        /// What the service or the network said.
        info: ServiceInfo,
    },

    /// The service rejected the credentials or the signature (unknown key id,
    /// bad secret, expired token, clock skew).
    #[error("Cannot {operation} \"{key}\": the S3 service rejected the credentials ({}); check the access key id, secret and region", .info.detail)]
    Auth {
        /// The public operation that failed.
        operation: Operation,
        /// The key concerned (for `list`, the prefix).
        key: String,
        /// What the service or the network said.
        info: ServiceInfo,
    },

    /// The credentials are valid but not allowed this (`AccessDenied`, or a 403
    /// without a code).
    #[error("Cannot {operation} \"{key}\": access denied ({}); check the bucket policy and the key's permissions", .info.detail)]
    AccessDenied {
        /// The public operation that failed.
        operation: Operation,
        /// The key concerned (for `list`, the prefix).
        key: String,
        /// What the service or the network said.
        info: ServiceInfo,
    },

    /// Bad input, found before any request or rejected by the service
    /// (`InvalidArgument`, `EntityTooLarge`, `KeyTooLongError`, ...).
    #[error("Cannot {operation} \"{key}\": {field}: {message}")]
    InvalidArgument {
        /// The public operation that failed.
        operation: Operation,
        /// The key concerned (for `list`, the prefix).
        key: String,
        /// The argument at fault as the caller wrote it; `request` when the service
        /// rejected the request.
        field: String,
        /// What is wrong with it.
        message: String,
    },

    /// A condition the caller set did not hold (`ifMatch`, `ifNoneMatch: '*'`),
    /// or the object changed during a download: HTTP 412.
    #[error("Cannot {operation} \"{key}\": {}", .info.detail)]
    PreconditionFailed {
        /// The public operation that failed.
        operation: Operation,
        /// The key concerned.
        key: String,
        /// What the service said.
        info: ServiceInfo,
    },

    /// A conditional write raced another write to the same key
    /// (`ConditionalRequestConflict`): HTTP 409; trying again may succeed.
    #[error("Cannot {operation} \"{key}\": another write to this key was in progress ({}); try again", .info.detail)]
    Conflict {
        /// The public operation that failed.
        operation: Operation,
        /// The key concerned.
        key: String,
        /// What the service said.
        info: ServiceInfo,
    },

    /// `ifNoneMatch` on a download matched the object's ETag: HTTP 304.
    #[error("Cannot {operation} \"{key}\": the object has not changed (its ETag matches ifNoneMatch)")]
    NotModified {
        /// The public operation that failed.
        operation: Operation,
        /// The key concerned.
        key: String,
        /// What the service said.
        info: ServiceInfo,
    },

    /// The bytes a download received do not match the object's full-object
    /// checksum (`x-amz-checksum-*`): they were changed on the way, or the
    /// service sent other bytes than it stored. The stream ends with this
    /// error instead of a clean end.
    #[error(
        "Cannot {operation} \"{key}\": the bytes received do not match the object's {algorithm} checksum (expected {expected}, computed {actual})"
    )]
    ChecksumMismatch {
        /// The public operation that failed.
        operation: Operation,
        /// The key concerned.
        key: String,
        /// `CRC32`, `CRC32C`, `CRC64NVME` or `SHA256`.
        algorithm: String,
        /// The service's value, base64.
        expected: String,
        /// The value of the bytes received, base64.
        actual: String,
    },

    /// The caller (or the engine on its behalf) stopped the operation.
    #[error("Cannot {operation} \"{key}\": the operation was aborted")]
    Aborted {
        /// The public operation that failed.
        operation: Operation,
        /// The key concerned (for `list`, the prefix).
        key: String,
    },

    /// The caller's source of an upload failed; nothing was stored.
    #[error("Cannot {operation} \"{key}\": the source stream failed: {detail}; nothing was stored")]
    SourceFailed {
        /// The public operation that failed.
        operation: Operation,
        /// The key being uploaded.
        key: String,
        /// The source's own error message.
        detail: String,
    },

    /// Any other failure, e.g. a status or S3 code with no better variant.
    #[error("Cannot {operation} \"{key}\": {}", .info.detail)]
    Unknown {
        /// The public operation that failed.
        operation: Operation,
        /// The key concerned (for `list`, the prefix).
        key: String,
        /// What the service or the network said.
        info: ServiceInfo,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The HTTP status for a `reason`: the one place reasons become statuses.
pub fn status_for_reason(reason: &str) -> u16 {
    match reason {
        "not_found" => 404,
        "invalid_argument" => 400,
        "precondition_failed" => 412,
        "conflict" => 409,
        "not_modified" => 304,
        // The service (or something between) answered with bytes that are
        // not the object's: a bad answer from upstream.
        "checksum_mismatch" => 502,
        "unavailable" => 503,
        _ => 500,
    }
}

impl Error {
    /// The machine-readable reason (`details.reason` in Node).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::BucketNotFound { .. } => "bucket_not_found",
            Error::Unavailable { .. } => "unavailable",
            Error::Auth { .. } => "auth",
            Error::AccessDenied { .. } => "access_denied",
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::PreconditionFailed { .. } => "precondition_failed",
            Error::Conflict { .. } => "conflict",
            Error::NotModified { .. } => "not_modified",
            Error::ChecksumMismatch { .. } => "checksum_mismatch",
            Error::Aborted { .. } | Error::SourceFailed { .. } => "aborted",
            Error::Unknown { .. } => "unknown",
        }
    }

    /// The public operation that failed (`details.operation` in Node).
    pub fn operation(&self) -> Operation {
        self.where_().0
    }

    /// The key the error concerns (`details.key` in Node).
    pub fn key(&self) -> &str {
        self.where_().1
    }

    /// Every variant's operation and key.
    fn where_(&self) -> (Operation, &str) {
        match self {
            Error::NotFound { operation, key, .. }
            | Error::BucketNotFound { operation, key, .. }
            | Error::Unavailable { operation, key, .. }
            | Error::Auth { operation, key, .. }
            | Error::AccessDenied { operation, key, .. }
            | Error::InvalidArgument { operation, key, .. }
            | Error::PreconditionFailed { operation, key, .. }
            | Error::Conflict { operation, key, .. }
            | Error::NotModified { operation, key, .. }
            | Error::ChecksumMismatch { operation, key, .. }
            | Error::Aborted { operation, key, .. }
            | Error::SourceFailed { operation, key, .. }
            | Error::Unknown { operation, key, .. } => (*operation, key),
        }
    }

    /// The HTTP status a server built on this backend should answer with
    /// (`statusCode` in Node): the one place reasons become statuses.
    pub fn http_status(&self) -> u16 {
        status_for_reason(self.reason())
    }

    fn service_info(&self) -> Option<&ServiceInfo> {
        match self {
            Error::BucketNotFound { info, .. }
            | Error::Unavailable { info, .. }
            | Error::Auth { info, .. }
            | Error::AccessDenied { info, .. }
            | Error::PreconditionFailed { info, .. }
            | Error::Conflict { info, .. }
            | Error::NotModified { info, .. }
            | Error::Unknown { info, .. } => Some(info),
            _ => None,
        }
    }

    /// Bad input, found before any request; `field` names it as the caller wrote it.
    pub fn invalid(operation: Operation, key: &str, field: &str, message: impl Into<String>) -> Self {
        Error::InvalidArgument { operation, key: key.to_owned(), field: field.to_owned(), message: message.into() }
    }

    /// The service could not be reached, or gave up; `detail` says how.
    pub fn unavailable(operation: Operation, key: &str, detail: impl Into<String>) -> Self {
        Error::Unavailable { operation, key: key.to_owned(), info: ServiceInfo::detail(detail) }
    }

    /// Anything else; `detail` says what happened.
    pub fn unknown(operation: Operation, key: &str, detail: impl Into<String>) -> Self {
        Error::Unknown { operation, key: key.to_owned(), info: ServiceInfo::detail(detail) }
    }

    /// The caller (or the engine on its behalf) stopped the operation.
    pub fn aborted(operation: Operation, key: &str) -> Self {
        Error::Aborted { operation, key: key.to_owned() }
    }

    /// The key does not exist in `bucket`.
    pub fn not_found(operation: Operation, key: &str, bucket: &str) -> Self {
        Error::NotFound { operation, key: key.to_owned(), bucket: bucket.to_owned() }
    }

    /// An upload's source failed with `detail`.
    pub fn source_failed(operation: Operation, key: &str, detail: impl Into<String>) -> Self {
        Error::SourceFailed { operation, key: key.to_owned(), detail: detail.into() }
    }

    /// An error the JS layer found (a wrong JS type, an aborted signal, a
    /// failed source), worded like every other: `reason` is one of
    /// `invalid_argument`, `aborted`, `source_failed` or `unknown`.
    pub fn from_parts(reason: &str, operation: Operation, key: &str, field: Option<&str>, message: &str) -> Self {
        match reason {
            "invalid_argument" => Error::invalid(operation, key, field.unwrap_or("arguments"), message),
            "aborted" => Error::aborted(operation, key),
            "source_failed" => Error::source_failed(operation, key, message),
            _ => Error::unknown(operation, key, message),
        }
    }

    /// A JSON description for the Node layer, which turns it into an error class.
    pub fn to_json(&self) -> serde_json::Value {
        let mut details = serde_json::json!({
            "reason": self.reason(),
            "operation": self.operation().as_str(),
            "key": self.key(),
        });
        let map = details.as_object_mut().expect("object");
        match self {
            Error::NotFound { bucket, .. } | Error::BucketNotFound { bucket, .. } => {
                map.insert("bucket".into(), bucket.clone().into());
            }
            Error::InvalidArgument { field, .. } => {
                map.insert("field".into(), field.clone().into());
            }
            Error::ChecksumMismatch { algorithm, expected, actual, .. } => {
                map.insert("algorithm".into(), algorithm.clone().into());
                map.insert("expected".into(), expected.clone().into());
                map.insert("actual".into(), actual.clone().into());
            }
            _ => {}
        }
        if let Some(info) = self.service_info() {
            if let Some(status) = info.status {
                map.insert("status".into(), status.into());
            }
            if let Some(code) = &info.code {
                map.insert("code".into(), code.clone().into());
            }
            if let Some(id) = &info.request_id {
                map.insert("requestId".into(), id.clone().into());
            }
        }
        serde_json::json!({
            "message": self.to_string(),
            "statusCode": self.http_status(),
            "details": details,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_key_bucket_and_maps_to_404() {
        let e = Error::NotFound { operation: Operation::Download, key: "g/2026/11/a.pdf".into(), bucket: "files".into() };
        assert_eq!(e.reason(), "not_found");
        assert_eq!(e.http_status(), 404);
        assert_eq!(e.to_string(), "Cannot download \"g/2026/11/a.pdf\": the object does not exist in bucket \"files\"");
        let j = e.to_json();
        assert_eq!(j["details"]["key"], "g/2026/11/a.pdf");
        assert_eq!(j["details"]["operation"], "download");
        assert_eq!(j["details"]["bucket"], "files");
    }

    #[test]
    fn status_codes_follow_reason() {
        let info = ServiceInfo { status: Some(503), code: Some("SlowDown".into()), ..Default::default() };
        let e = Error::Unavailable { operation: Operation::Upload, key: "k".into(), info };
        assert_eq!(e.http_status(), 503);
        assert_eq!(e.to_json()["details"]["code"], "SlowDown");
        assert_eq!(Error::invalid(Operation::Upload, "k", "key", "bad").http_status(), 400);
        let auth = Error::Auth { operation: Operation::Exists, key: "k".into(), info: ServiceInfo::default() };
        assert_eq!(auth.http_status(), 500);
        assert_eq!(auth.reason(), "auth");
    }

    #[test]
    fn checksum_mismatch_names_algorithm_and_values() {
        let e = Error::ChecksumMismatch {
            operation: Operation::Download,
            key: "v/lesson.mp4".into(),
            algorithm: "CRC32C".into(),
            expected: "yZRlqg==".into(),
            actual: "AAAAAA==".into(),
        };
        assert_eq!(e.reason(), "checksum_mismatch");
        assert_eq!(e.http_status(), 502);
        assert_eq!(
            e.to_string(),
            "Cannot download \"v/lesson.mp4\": the bytes received do not match the object's CRC32C checksum (expected yZRlqg==, computed AAAAAA==)"
        );
        let j = e.to_json();
        assert_eq!(j["statusCode"], 502);
        assert_eq!(j["details"]["algorithm"], "CRC32C");
        assert_eq!(j["details"]["expected"], "yZRlqg==");
        assert_eq!(j["details"]["actual"], "AAAAAA==");
    }
}
