//! Object keys: validation of caller keys and the host's key layout
//! `<groupId>/<yyyy>/<mm>/<uuid>[.<ext>]`.

use chrono::{DateTime, Datelike, Utc};

use crate::error::{Error, Operation, Result};

/// S3's limit on a key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;
const MAX_EXTENSION_CHARS: usize = 16;

/// Checks a key before any request is made.
///
/// Control characters are refused although S3 stores them: they break XML
/// listings, logs and signed URLs in ways that are hard to trace back.
pub fn validate_key(operation: Operation, key: &str) -> Result<()> {
    let why = if key.is_empty() {
        "must not be empty".to_owned()
    } else if key.len() > MAX_KEY_BYTES {
        format!("is {} UTF-8 bytes; S3 allows at most {MAX_KEY_BYTES}", key.len())
    } else if key.chars().any(char::is_control) {
        "must not contain control characters".to_owned()
    } else if key.split('/').any(|segment| segment == "." || segment == "..") {
        // URL parsers (fetch, browsers) remove such segments, so a signed
        // URL for the key would name another object and fail its signature.
        "must not contain \".\" or \"..\" path segments".to_owned()
    } else {
        return Ok(());
    };
    Err(Error::invalid(operation, key, "key", why))
}

/// Builds `<groupId>/<yyyy>/<mm>/<uuid>[.<ext>]` with the UTC year and month
/// of `date`; the extension is the lower-cased last extension of `filename`
/// when it is short and alphanumeric.
///
/// ```
/// use chrono::TimeZone;
/// let date = chrono::Utc.with_ymd_and_hms(2026, 3, 9, 12, 0, 0).unwrap();
/// let key = s3_storage_core::keys::generate_storage_key("group-1", Some("Essay.PDF"), date).unwrap();
/// assert!(key.starts_with("group-1/2026/03/") && key.ends_with(".pdf"));
/// ```
pub fn generate_storage_key(group_id: &str, filename: Option<&str>, date: DateTime<Utc>) -> Result<String> {
    let bad = |why: &str| Err(Error::invalid(Operation::GenerateKey, group_id, "groupId", why));
    if group_id.trim().is_empty() {
        return bad("must not be empty");
    }
    if group_id.contains('/') || group_id.chars().any(char::is_control) {
        return bad("must not contain '/' or control characters");
    }
    if group_id.len() > 256 {
        return bad("must be at most 256 bytes");
    }
    let id = uuid::Uuid::new_v4();
    let key = match filename.and_then(extension) {
        Some(ext) => format!("{group_id}/{:04}/{:02}/{id}.{ext}", date.year(), date.month()),
        None => format!("{group_id}/{:04}/{:02}/{id}", date.year(), date.month()),
    };
    validate_key(Operation::GenerateKey, &key)?;
    Ok(key)
}

fn extension(filename: &str) -> Option<String> {
    let base = filename.rsplit(['/', '\\']).next()?;
    let (stem, ext) = base.rsplit_once('.')?;
    // ".env" is a name, not an extension
    if stem.is_empty() || ext.is_empty() || ext.chars().count() > MAX_EXTENSION_CHARS {
        return None;
    }
    if !ext.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(ext.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn key_limits() {
        assert!(validate_key(Operation::Upload, "a").is_ok());
        assert!(validate_key(Operation::Upload, &"é".repeat(512)).is_ok()); // 1024 bytes
        let e = validate_key(Operation::Upload, &"é".repeat(513)).unwrap_err();
        assert_eq!(e.reason(), "invalid_argument");
        assert!(e.to_string().contains("1026 UTF-8 bytes"));
        assert!(validate_key(Operation::Upload, "").is_err());
        assert!(validate_key(Operation::Upload, "a\nb").is_err());
        assert!(validate_key(Operation::Upload, "dir/with space (1)+#?.txt").is_ok());
        assert!(validate_key(Operation::Upload, "a/../b").is_err());
        assert!(validate_key(Operation::Upload, "./a").is_err());
        assert!(validate_key(Operation::Upload, "a/..b/.c/d.").is_ok());
    }

    #[test]
    fn generated_key_layout() {
        let date = Utc.with_ymd_and_hms(2026, 1, 31, 23, 59, 59).unwrap();
        let k = generate_storage_key("group-1", Some("Report.Final.PDF"), date).unwrap();
        let parts: Vec<&str> = k.split('/').collect();
        assert_eq!(&parts[..3], ["group-1", "2026", "01"]);
        let (id, ext) = parts[3].split_once('.').unwrap();
        assert_eq!(ext, "pdf");
        assert!(uuid::Uuid::parse_str(id).is_ok());
        let k2 = generate_storage_key("group-1", Some("Report.Final.PDF"), date).unwrap();
        assert_ne!(k, k2);
    }

    #[test]
    fn extension_rules() {
        assert_eq!(extension("a.tar.gz").as_deref(), Some("gz"));
        assert_eq!(extension(".env"), None);
        assert_eq!(extension("noext"), None);
        assert_eq!(extension("weird.p d f"), None);
        assert_eq!(extension("C:\\dir.x\\file.JPG").as_deref(), Some("jpg"));
        let date = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let k = generate_storage_key("g", None, date).unwrap();
        assert!(!k.contains('.'));
    }

    #[test]
    fn bad_group_ids() {
        let date = Utc::now();
        for g in ["", "  ", "a/b", "x\u{0}"] {
            let e = generate_storage_key(g, None, date).unwrap_err();
            assert_eq!(e.reason(), "invalid_argument", "{g:?}");
        }
    }
}
