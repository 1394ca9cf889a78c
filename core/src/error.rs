//! Typed errors: one variant per thing a caller can act on, each naming the
//! operation and the key it concerns. Messages never carry credentials.

use std::fmt;

/// The public operation an error came from (`details.operation` in Node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Upload,
    Download,
    Delete,
    Exists,
    Head,
    SignUrl,
    GenerateKey,
    Copy,
    List,
    DeleteMany,
    PresignPost,
}

impl Operation {
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
    pub request_id: Option<String>,
    /// Human-readable cause (service message or transport error chain).
    pub detail: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("Cannot {operation} \"{key}\": the object does not exist in bucket \"{bucket}\"")]
    NotFound {
        operation: Operation,
        key: String,
        bucket: String,
    },

    #[error("Cannot {operation} \"{key}\": bucket \"{bucket}\" does not exist")]
    BucketNotFound {
        operation: Operation,
        key: String,
        bucket: String,
        info: ServiceInfo,
    },

    #[error("Cannot {operation} \"{key}\": the S3 service is unavailable ({})", .info.detail)]
    Unavailable {
        operation: Operation,
        key: String,
        info: ServiceInfo,
    },

    #[error("Cannot {operation} \"{key}\": the S3 service rejected the credentials ({}); check the access key id, secret and region", .info.detail)]
    Auth {
        operation: Operation,
        key: String,
        info: ServiceInfo,
    },

    #[error("Cannot {operation} \"{key}\": access denied ({}); check the bucket policy and the key's permissions", .info.detail)]
    AccessDenied {
        operation: Operation,
        key: String,
        info: ServiceInfo,
    },

    #[error("Cannot {operation} \"{key}\": {field}: {message}")]
    InvalidArgument {
        operation: Operation,
        key: String,
        field: String,
        message: String,
    },

    #[error("Cannot {operation} \"{key}\": the operation was aborted")]
    Aborted { operation: Operation, key: String },

    #[error("Cannot {operation} \"{key}\": {}", .info.detail)]
    Unknown {
        operation: Operation,
        key: String,
        info: ServiceInfo,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
            Error::Aborted { .. } => "aborted",
            Error::Unknown { .. } => "unknown",
        }
    }

    pub fn operation(&self) -> Operation {
        match self {
            Error::NotFound { operation, .. }
            | Error::BucketNotFound { operation, .. }
            | Error::Unavailable { operation, .. }
            | Error::Auth { operation, .. }
            | Error::AccessDenied { operation, .. }
            | Error::InvalidArgument { operation, .. }
            | Error::Aborted { operation, .. }
            | Error::Unknown { operation, .. } => *operation,
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Error::NotFound { key, .. }
            | Error::BucketNotFound { key, .. }
            | Error::Unavailable { key, .. }
            | Error::Auth { key, .. }
            | Error::AccessDenied { key, .. }
            | Error::InvalidArgument { key, .. }
            | Error::Aborted { key, .. }
            | Error::Unknown { key, .. } => key,
        }
    }

    /// The HTTP status a server built on this backend should answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::NotFound { .. } => 404,
            Error::InvalidArgument { .. } => 400,
            Error::Unavailable { .. } => 503,
            _ => 500,
        }
    }

    fn service_info(&self) -> Option<&ServiceInfo> {
        match self {
            Error::BucketNotFound { info, .. }
            | Error::Unavailable { info, .. }
            | Error::Auth { info, .. }
            | Error::AccessDenied { info, .. }
            | Error::Unknown { info, .. } => Some(info),
            _ => None,
        }
    }

    pub fn invalid(operation: Operation, key: &str, field: &str, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            operation,
            key: key.to_owned(),
            field: field.to_owned(),
            message: message.into(),
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
        let e = Error::NotFound {
            operation: Operation::Download,
            key: "g/2026/11/a.pdf".into(),
            bucket: "files".into(),
        };
        assert_eq!(e.reason(), "not_found");
        assert_eq!(e.http_status(), 404);
        assert_eq!(
            e.to_string(),
            "Cannot download \"g/2026/11/a.pdf\": the object does not exist in bucket \"files\""
        );
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
}
