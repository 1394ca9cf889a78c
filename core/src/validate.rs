//! Every rule on a caller's arguments, in one place: the backend calls these
//! before any request, and the binding and the JS layer only convert types.
//! Each rule returns [`Error::InvalidArgument`] naming the field as the
//! caller wrote it.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::MAX_SIGNED_URL_EXPIRATION;
use crate::encryption::{Encryption, EncryptionRequest};
use crate::error::{Error, Operation, Result};
use crate::keys::validate_key;
use crate::types::{
    ByteRange, DownloadOptions, GetConditions, ListOptions, ObjectHeaders, ObjectVersion, PostOptions, PutOptions, PutRequest, SignMethod,
    SignUrlOptions, WriteCondition,
};

/// S3 caps user metadata (names and values) at 2 KB.
const MAX_METADATA_BYTES: usize = 2048;
/// Largest single PutObject (and so, a signed PUT or a POST form).
const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;
/// Largest object S3 stores (5 TiB).
const MAX_OBJECT: u64 = 5 * 1024 * 1024 * 1024 * 1024;
/// Ranged GETs at once in a parallel download.
pub const MAX_DOWNLOAD_CONCURRENCY: u32 = 16;
/// Keys per listing page (S3's limit).
const MAX_LIST_LIMIT: u32 = 1000;
/// JavaScript's largest exact integer.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A whole number in `min..=max`, or the error `what` describes.
fn whole(operation: Operation, key: &str, field: &str, n: f64, min: u64, max: u64, what: &str) -> Result<u64> {
    if n.fract() == 0.0 && n >= min as f64 && n <= max as f64 {
        Ok(n as u64)
    } else {
        Err(Error::invalid(operation, key, field, format!("must be {what}, got {n}")))
    }
}

/// A header value: non-empty printable ASCII.
fn header_value(v: &str) -> bool {
    !v.trim().is_empty() && v.chars().all(|c| c.is_ascii() && !c.is_control())
}

/// What is stored with an object (upload or copy), and on what condition.
pub(crate) fn put_options(operation: Operation, key: &str, request: PutRequest) -> Result<PutOptions> {
    validate_key(operation, key)?;
    let invalid = |field: &str, why: String| Err(Error::invalid(operation, key, field, why));
    let PutRequest { content_type, metadata, if_none_match, if_match, headers, tags, checksum, server_side_encryption } = request;
    if !header_value(&content_type) {
        return invalid("contentType", "must be non-empty printable ASCII without CR or LF".into());
    }
    let metadata = metadata.unwrap_or_default();
    let mut total = 0;
    for (name, value) in &metadata {
        // x-amz-meta-<name> must be an HTTP header name
        if !is_token(name) {
            return invalid(&format!("metadata.{name}"), "metadata names must be letters, digits and -_. (an HTTP header token)".into());
        }
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return invalid(
                &format!("metadata.{name}"),
                "metadata values must be printable ASCII (S3 sends them as HTTP headers); encode other text, e.g. with encodeURIComponent"
                    .into(),
            );
        }
        total += name.len() + value.len();
    }
    if total > MAX_METADATA_BYTES {
        return invalid("metadata", format!("is {total} bytes; S3 allows at most {MAX_METADATA_BYTES}"));
    }
    let condition = match (if_none_match, if_match) {
        (Some(_), Some(_)) => return invalid("ifMatch", "cannot be combined with ifNoneMatch".into()),
        (Some(any), None) if any == "*" => Some(WriteCondition::Absent),
        (Some(other), None) => {
            return invalid("ifNoneMatch", format!("must be '*' (store only if no object is at the key), got {other:?}"))
        }
        (None, Some(etag)) if header_value(&etag) => Some(WriteCondition::Matches(etag)),
        (None, Some(_)) => return invalid("ifMatch", "must be an ETag: non-empty printable ASCII".into()),
        (None, None) => None,
    };
    let headers = object_headers(operation, key, headers)?;
    let tagging = tags.map(|t| tagging(operation, key, t)).transpose()?;
    let checksum = checksum.map(|c| c.parse().map_err(|why| Error::invalid(operation, key, "checksum", why))).transpose()?;
    let encryption = server_side_encryption.map(|e| encryption(operation, key, e)).transpose()?;
    Ok(PutOptions { content_type, metadata, condition, headers, tagging, checksum, encryption })
}

/// A call's `serverSideEncryption`, checked member by member.
pub(crate) fn encryption(operation: Operation, key: &str, request: EncryptionRequest) -> Result<Encryption> {
    request.check().map_err(|(member, why)| Error::invalid(operation, key, &format!("serverSideEncryption.{member}"), why))
}

/// An HTTP header token (a header name).
fn is_token(name: &str) -> bool {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    !name.is_empty() && name.bytes().all(token)
}

/// Standard headers stored with an object: header values; `expires` a date.
fn object_headers(operation: Operation, key: &str, h: ObjectHeaders) -> Result<ObjectHeaders> {
    let fields = [
        ("cacheControl", &h.cache_control),
        ("contentDisposition", &h.content_disposition),
        ("contentEncoding", &h.content_encoding),
        ("contentLanguage", &h.content_language),
    ];
    for (field, value) in fields {
        if value.as_deref().is_some_and(|v| !header_value(v)) {
            return Err(Error::invalid(operation, key, field, "must be non-empty printable ASCII (it is sent as an HTTP header)"));
        }
    }
    if let Some(class) = &h.storage_class {
        if class.is_empty() || !class.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
            return Err(Error::invalid(
                operation,
                key,
                "storageClass",
                format!("must be an S3 storage class such as STANDARD_IA, got {class:?}"),
            ));
        }
    }
    let expires = match &h.expires {
        None => None,
        Some(text) => match chrono::DateTime::parse_from_rfc3339(text) {
            Ok(t) => Some(t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            Err(_) => {
                return Err(Error::invalid(operation, key, "expires", format!("must be a Date or an ISO 8601 date-time, got {text:?}")))
            }
        },
    };
    Ok(ObjectHeaders { expires, ..h })
}

/// S3 allows at most 10 tags on an object.
const MAX_TAGS: usize = 10;

/// Tags as the `x-amz-tagging` header's query string, in key order.
fn tagging(operation: Operation, key: &str, tags: HashMap<String, String>) -> Result<String> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid(operation, key, "tags", format!("has {} tags; S3 allows at most {MAX_TAGS}", tags.len())));
    }
    let mut pairs: Vec<_> = tags.into_iter().collect();
    pairs.sort();
    for (name, value) in &pairs {
        if name.is_empty() || name.chars().count() > 128 || value.chars().count() > 256 {
            return Err(Error::invalid(operation, key, &format!("tags.{name}"), "tag keys are 1–128 characters and values at most 256"));
        }
    }
    Ok(pairs.iter().map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v))).collect::<Vec<_>>().join("&"))
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An upload's declared `contentLength`.
pub(crate) fn declared_length(key: &str, content_length: Option<f64>) -> Result<Option<u64>> {
    content_length
        .map(|n| whole(Operation::Upload, key, "contentLength", n, 0, MAX_OBJECT, "a non-negative integer number of bytes, at most 5 TiB"))
        .transpose()
}

/// A download's range and concurrency, checked together.
pub(crate) fn download(key: &str, o: &DownloadOptions) -> Result<(Option<ByteRange>, u32)> {
    let op = Operation::Download;
    validate_key(op, key)?;
    let offset = |field: &str, n: f64| whole(op, key, field, n, 0, MAX_SAFE_INTEGER, "a non-negative integer byte offset");
    let range = match (o.range_start, o.range_end) {
        (None, None) => None,
        (start, end) => {
            Some(ByteRange { start: offset("range.start", start.unwrap_or(0.0))?, end: end.map(|e| offset("range.end", e)).transpose()? })
        }
    };
    if let Some(ByteRange { start, end: Some(end) }) = range {
        if end < start {
            return Err(Error::invalid(op, key, "range", format!("end ({end}) is before start ({start})")));
        }
    }
    let max = MAX_DOWNLOAD_CONCURRENCY as u64;
    let concurrency = whole(op, key, "concurrency", o.concurrency.unwrap_or(1.0), 1, max, &format!("an integer from 1 to {max}"))? as u32;
    if concurrency > 1 && range.is_some() {
        return Err(Error::invalid(op, key, "concurrency", "cannot be combined with range"));
    }
    Ok((range, concurrency))
}

/// A download's conditions and version.
pub(crate) fn get_conditions(key: &str, o: &DownloadOptions) -> Result<GetConditions> {
    let op = Operation::Download;
    for (field, value) in [("ifMatch", &o.if_match), ("ifNoneMatch", &o.if_none_match), ("versionId", &o.version_id)] {
        if value.as_deref().is_some_and(|v| !header_value(v)) {
            return Err(Error::invalid(op, key, field, "must be non-empty printable ASCII"));
        }
    }
    Ok(GetConditions {
        if_match: o.if_match.clone(),
        if_none_match: o.if_none_match.clone(),
        version_id: o.version_id.clone(),
        pinned: false,
    })
}

/// A version id given to delete.
pub(crate) fn version_id(operation: Operation, key: &str, version_id: Option<String>) -> Result<Option<String>> {
    validate_key(operation, key)?;
    match version_id {
        Some(v) if !header_value(&v) => Err(Error::invalid(operation, key, "versionId", "must be non-empty printable ASCII")),
        v => Ok(v),
    }
}

/// A signed URL's lifetime in seconds: `expires_in`, or `default`.
pub(crate) fn expires_in(operation: Operation, key: &str, expires_in: Option<f64>, default: u32) -> Result<u32> {
    let max = MAX_SIGNED_URL_EXPIRATION as u64;
    match expires_in {
        None => Ok(default),
        Some(s) => Ok(whole(operation, key, "expiresIn", s, 1, max, &format!("an integer number of seconds from 1 to {max}"))? as u32),
    }
}

/// A checked signed URL request.
pub(crate) struct SignRequest<'a> {
    pub method: SignMethod,
    pub expires_in: Duration,
    pub content_type: Option<&'a str>,
    pub content_length: Option<u64>,
    pub response_content_type: Option<&'a str>,
    pub download_filename: Option<&'a str>,
    /// The backend's encryption, when the URL's request must carry it.
    pub encryption: Option<&'a Encryption>,
    /// Its headers, signed: the requester must send them as they are.
    pub headers: Vec<(&'static str, String)>,
}

impl SignRequest<'_> {
    /// The headers to send with the URL, for the caller.
    pub(crate) fn owned_headers(&self) -> Vec<(String, String)> {
        self.headers.iter().map(|(name, value)| ((*name).to_owned(), value.clone())).collect()
    }
}

/// What a signed URL's request must carry of the backend's encryption: a
/// PUT the headers that encrypt what it stores (a GET of an SSE-S3 or
/// SSE-KMS object needs none); with SSE-C, GET and PUT the key, which is
/// handed out only when the caller asks for it.
fn url_encryption<'e>(
    key: &str,
    method: SignMethod,
    include_customer_key: Option<bool>,
    encryption: Option<&'e Encryption>,
) -> Result<Option<&'e Encryption>> {
    match (encryption, method) {
        (Some(Encryption::Customer(_)), _) if include_customer_key != Some(true) => Err(Error::invalid(
            Operation::SignUrl,
            key,
            "serverSideEncryption",
            "is SSE-C: the service serves and stores such objects only for requests that send the key in headers, which a plain link \
             or a browser form cannot; stream the object through download() or upload(), or pass includeCustomerKey: true to get the \
             URL together with the headers its request must send (they hold the key)",
        )),
        (Some(e), _) if e.customer_key().is_some() => Ok(Some(e)),
        (Some(e), SignMethod::Put) => Ok(Some(e)),
        _ => Ok(None),
    }
}

/// A signed URL's options. Options of the other method are errors: a GET
/// URL cannot bind a content type or length, a PUT URL has no response.
/// `encryption` is the backend's.
pub(crate) fn sign_url<'a>(
    key: &str,
    o: &'a SignUrlOptions,
    default_expiry: u32,
    encryption: Option<&'a Encryption>,
) -> Result<SignRequest<'a>> {
    let op = Operation::SignUrl;
    validate_key(op, key)?;
    let invalid = |field: &str, why: &str| Err(Error::invalid(op, key, field, why));
    let method = match o.method.as_deref() {
        None | Some("GET") => SignMethod::Get,
        Some("PUT") => SignMethod::Put,
        Some(other) => return Err(Error::invalid(op, key, "method", format!("must be \"GET\" or \"PUT\", got {other:?}"))),
    };
    let seconds = expires_in(op, key, o.expires_in, default_expiry)?;
    if o.content_type.as_deref().is_some_and(|ct| !header_value(ct)) {
        return invalid("contentType", "must be non-empty printable ASCII");
    }
    if o.response_content_type.as_deref().is_some_and(|ct| !header_value(ct)) {
        return invalid("responseContentType", "must be non-empty printable ASCII");
    }
    if let Some(name) = &o.download_filename {
        if name.trim().is_empty() || name.chars().any(char::is_control) || name.len() > 1024 {
            return invalid("downloadFilename", "must be a non-empty file name without control characters, at most 1024 bytes");
        }
    }
    let content_length = o
        .content_length
        .map(|n| {
            whole(op, key, "contentLength", n, 0, MAX_SINGLE_PUT, "an integer number of bytes from 0 to 5 GiB (the largest single PUT)")
        })
        .transpose()?;
    match method {
        SignMethod::Get if o.content_type.is_some() => {
            invalid("contentType", "applies to PUT URLs only (for a GET URL, use responseContentType)")
        }
        SignMethod::Get if o.content_length.is_some() => invalid("contentLength", "applies to PUT URLs only"),
        SignMethod::Put if o.response_content_type.is_some() => invalid("responseContentType", "applies to GET URLs only"),
        SignMethod::Put if o.download_filename.is_some() => invalid("downloadFilename", "applies to GET URLs only"),
        _ => {
            let encryption = url_encryption(key, method, o.include_customer_key, encryption)?;
            Ok(SignRequest {
                method,
                expires_in: Duration::from_secs(seconds as u64),
                content_type: o.content_type.as_deref(),
                content_length,
                response_content_type: o.response_content_type.as_deref(),
                download_filename: o.download_filename.as_deref(),
                encryption,
                headers: encryption.map(Encryption::write_headers).unwrap_or_default(),
            })
        }
    }
}

/// The fields a POST form must send to store its object encrypted as the
/// backend's option says. An SSE-C key would have to go to the browser in
/// the form: refused.
pub(crate) fn post_encryption(key: &str, encryption: Option<&Encryption>) -> Result<Vec<(&'static str, String)>> {
    match encryption {
        Some(Encryption::Customer(_)) => Err(Error::invalid(
            Operation::PresignPost,
            key,
            "serverSideEncryption",
            "is SSE-C: a form would have to hand the key to the browser; upload through upload() on the server instead",
        )),
        Some(e) => Ok(e.write_headers()),
        None => Ok(Vec::new()),
    }
}

/// A checked POST form request: (min size, max size, seconds).
pub(crate) fn post(o: &PostOptions, default_expiry: u32) -> Result<(u64, u64, u32)> {
    let op = Operation::PresignPost;
    let key = o.key.as_str();
    validate_key(op, key)?;
    let seconds = expires_in(op, key, o.expires_in, default_expiry)?;
    let size = |field: &str, n: f64| whole(op, key, field, n, 0, MAX_SINGLE_PUT, "an integer number of bytes from 0 to 5 GiB");
    let max_size = size("maxSize", o.max_size)?;
    let min_size = size("minSize", o.min_size.unwrap_or(0.0))?;
    if min_size > max_size {
        return Err(Error::invalid(op, key, "minSize", format!("({min_size}) is larger than maxSize ({max_size})")));
    }
    if o.content_type.as_deref().is_some_and(|ct| !header_value(ct)) {
        return Err(Error::invalid(op, key, "contentType", "must be non-empty printable ASCII"));
    }
    Ok((min_size, max_size, seconds))
}

/// A listing page's options: (prefix, limit).
pub(crate) fn list(o: &ListOptions) -> Result<(&str, u32)> {
    let op = Operation::List;
    let prefix = o.prefix.as_deref().unwrap_or("");
    if prefix.len() > 1024 || prefix.chars().any(char::is_control) {
        return Err(Error::invalid(op, prefix, "prefix", "must be at most 1024 bytes, without control characters"));
    }
    let max = MAX_LIST_LIMIT as u64;
    let limit = whole(op, prefix, "limit", o.limit.unwrap_or(max as f64), 1, max, &format!("an integer from 1 to {max}"))? as u32;
    if o.cursor.as_deref().is_some_and(str::is_empty) {
        return Err(Error::invalid(op, prefix, "cursor", "must be a nextCursor from an earlier page"));
    }
    Ok((prefix, limit))
}

/// Keys of a `delete_many`: all valid, duplicates dropped, order kept.
pub(crate) fn delete_many(items: Vec<ObjectVersion>) -> Result<Vec<ObjectVersion>> {
    for item in &items {
        version_id(Operation::DeleteMany, &item.key, item.version_id.clone())?;
    }
    let mut seen = std::collections::HashSet::new();
    Ok(items.into_iter().filter(|i| seen.insert(i.clone())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(f: impl FnOnce(&mut PutRequest)) -> Result<PutOptions> {
        let mut r = PutRequest { content_type: "text/plain".into(), ..Default::default() };
        f(&mut r);
        put_options(Operation::Upload, "k", r)
    }

    #[test]
    fn write_conditions_and_object_headers() {
        assert_eq!(put(|r| r.if_none_match = Some("*".into())).unwrap().condition, Some(WriteCondition::Absent));
        assert_eq!(put(|r| r.if_match = Some("\"e\"".into())).unwrap().condition, Some(WriteCondition::Matches("\"e\"".into())));
        let field = |e: Error| match e {
            Error::InvalidArgument { field, .. } => field,
            other => panic!("{other}"),
        };
        assert_eq!(field(put(|r| r.if_none_match = Some("\"e\"".into())).unwrap_err()), "ifNoneMatch");
        assert_eq!(
            field(
                put(|r| {
                    r.if_none_match = Some("*".into());
                    r.if_match = Some("e".into());
                })
                .unwrap_err()
            ),
            "ifMatch"
        );
        let expires = put(|r| r.headers.expires = Some("2030-01-01T01:00:00+01:00".into())).unwrap().headers.expires;
        assert_eq!(expires.as_deref(), Some("2030-01-01T00:00:00.000Z"));
        assert_eq!(field(put(|r| r.headers.expires = Some("tomorrow".into())).unwrap_err()), "expires");
        assert_eq!(field(put(|r| r.headers.cache_control = Some("a\nb".into())).unwrap_err()), "cacheControl");
        assert_eq!(field(put(|r| r.headers.storage_class = Some("standard".into())).unwrap_err()), "storageClass");
        let tags = HashMap::from([("b".to_owned(), "x y".to_owned()), ("a/1".to_owned(), "ü".to_owned())]);
        assert_eq!(put(|r| r.tags = Some(tags)).unwrap().tagging.as_deref(), Some("a%2F1=%C3%BC&b=x%20y"));
        let eleven = (0..11).map(|i| (i.to_string(), String::new())).collect();
        assert_eq!(field(put(|r| r.tags = Some(eleven)).unwrap_err()), "tags");
    }

    #[test]
    fn a_get_url_refuses_put_only_options_and_says_so() {
        let o = SignUrlOptions { content_type: Some("text/plain".into()), ..Default::default() };
        let e = sign_url("k", &o, 900, None).err().unwrap();
        assert_eq!(e.reason(), "invalid_argument");
        assert!(e.to_string().contains("contentType: applies to PUT URLs only"), "{e}");
        let put = SignUrlOptions { method: Some("PUT".into()), content_type: Some("text/plain".into()), ..Default::default() };
        assert_eq!(sign_url("k", &put, 900, None).ok().unwrap().content_type, Some("text/plain"));
    }

    #[test]
    fn download_concurrency_and_range_rules() {
        let ok = |o: DownloadOptions| download("k", &o);
        assert_eq!(ok(DownloadOptions::default()).unwrap(), (None, 1));
        assert!(ok(DownloadOptions { concurrency: Some(17.0), ..Default::default() }).unwrap_err().to_string().contains("from 1 to 16"));
        assert!(ok(DownloadOptions { concurrency: Some(2.5), ..Default::default() }).is_err());
        assert!(ok(DownloadOptions { range_start: Some(5.0), range_end: Some(4.0), ..Default::default() }).is_err());
        assert!(ok(DownloadOptions { range_start: Some(0.0), concurrency: Some(2.0), ..Default::default() }).is_err());
        assert_eq!(
            ok(DownloadOptions { range_start: Some(3.0), ..Default::default() }).unwrap().0,
            Some(ByteRange { start: 3, end: None })
        );
    }
}
