//! Backend configuration: parsed from constructor options (JSON-shaped) or
//! from the host's `STORAGE_S3_*` environment variables. Every bad field is
//! reported at once, named as the caller wrote it.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_SIGNED_URL_EXPIRATION: u32 = 900;
/// SigV4 presigned URLs cannot live longer than seven days.
pub const MAX_SIGNED_URL_EXPIRATION: u32 = 604_800;

const MIB: u64 = 1024 * 1024;
/// S3's limits on multipart part size.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;

/// A secret string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// How uploads are split into parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultipartConfig {
    /// Bytes per part.
    pub part_size: u64,
    /// Parts uploaded at once; memory stays under part_size × (queue_size + 1).
    pub queue_size: usize,
    /// Bodies of known length up to this size go in one PutObject.
    pub threshold: u64,
    /// Copies of objects up to this size are one CopyObject (S3's limit is 5 GiB).
    pub copy_threshold: u64,
    /// Bytes per UploadPartCopy above `copy_threshold`.
    pub copy_part_size: u64,
}

impl Default for MultipartConfig {
    fn default() -> Self {
        MultipartConfig { part_size: 5 * MIB, queue_size: 3, threshold: 256 * MIB, copy_threshold: MAX_PART_SIZE, copy_part_size: 512 * MIB }
    }
}

/// Retries of failures that are safe to repeat (refused or reset
/// connections, timeouts, 500/502/503/504, SlowDown, RequestTimeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts in all, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// First backoff; it doubles each retry, with full jitter.
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig { max_attempts: 3, base_delay_ms: 100, max_delay_ms: 5_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutConfig {
    /// Establishing a TCP (and TLS) connection.
    pub connect_ms: u64,
    /// The longest the service may go without progress: answering a request,
    /// taking upload bytes, or sending download bytes the caller asked for.
    pub request_ms: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig { connect_ms: 5_000, request_ms: 30_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub force_path_style: bool,
    /// `None`: the AWS default provider chain (env, profile, web identity, IMDS).
    pub credentials: Option<StaticCredentials>,
    pub signed_url_expiration: u32,
    pub multipart: MultipartConfig,
    pub retry: RetryConfig,
    pub timeouts: TimeoutConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub field: String,
    pub message: String,
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Invalid storage configuration: ")?;
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", issue.field, issue.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub fn to_json(&self) -> Value {
        let issues: Vec<Value> = self
            .issues
            .iter()
            .map(|i| serde_json::json!({ "field": i.field, "message": i.message }))
            .collect();
        serde_json::json!({
            "message": self.to_string(),
            "details": { "issues": issues, "backend": "s3" },
        })
    }
}

/// One configuration value as the caller supplied it.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Json(&'a Value),
    Env(&'a str),
}

/// A value plus the name to blame when it is wrong.
struct Field<'a> {
    name: String,
    raw: Option<Raw<'a>>,
}

#[derive(Default)]
struct Issues(Vec<ConfigIssue>);

impl Issues {
    fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(ConfigIssue { field: field.to_owned(), message: message.into() });
    }

    /// A string field; `None` when absent (or empty in the environment).
    fn string(&mut self, f: &Field) -> Option<String> {
        match f.raw? {
            Raw::Env(s) => Some(s.to_owned()),
            Raw::Json(Value::Null) => None,
            Raw::Json(Value::String(s)) => Some(s.clone()),
            Raw::Json(_) => {
                self.push(&f.name, "must be a string");
                None
            }
        }
    }

    fn required_string(&mut self, f: &Field, what: &str) -> Option<String> {
        if f.raw.is_none() || matches!(f.raw, Some(Raw::Json(Value::Null))) {
            self.push(&f.name, format!("{what} is required"));
            return None;
        }
        let s = self.string(f)?;
        if s.trim().is_empty() {
            self.push(&f.name, format!("{what} is required"));
            return None;
        }
        Some(s)
    }

    fn bool(&mut self, f: &Field) -> Option<bool> {
        match f.raw? {
            Raw::Json(Value::Null) => None,
            Raw::Json(Value::Bool(b)) => Some(*b),
            Raw::Env(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => {
                    self.push(&f.name, "must be true or false");
                    None
                }
            },
            Raw::Json(_) => {
                self.push(&f.name, "must be a boolean");
                None
            }
        }
    }

    /// An integer in `min..=max`; `None` when absent or invalid.
    fn integer(&mut self, f: &Field, min: u64, max: u64, what: &str) -> Option<u64> {
        let parsed: Option<f64> = match f.raw? {
            Raw::Json(Value::Null) => return None,
            Raw::Json(Value::Number(n)) => n.as_f64(),
            Raw::Env(s) => s.trim().parse::<f64>().ok().filter(|_| {
                // digits only: "1e3" or "0x10" in an env var is a mistake
                s.trim().bytes().all(|b| b.is_ascii_digit())
            }),
            Raw::Json(_) => None,
        };
        match parsed {
            Some(n) if n.fract() == 0.0 && n >= min as f64 && n <= max as f64 => Some(n as u64),
            _ => {
                self.push(&f.name, format!("{what} must be an integer from {min} to {max}"));
                None
            }
        }
    }
}

fn json_field<'a>(obj: &'a Map<String, Value>, prefix: &str, name: &str) -> Field<'a> {
    Field { name: format!("{prefix}{name}"), raw: obj.get(name).map(Raw::Json) }
}

fn validate_bucket(issues: &mut Issues, field: &str, bucket: &str) {
    let ok_chars = bucket.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if !(3..=255).contains(&bucket.len()) || !ok_chars {
        issues.push(field, "S3 bucket name must be 3 to 255 characters of letters, digits, '.', '-' or '_'");
    }
}

fn validate_region(issues: &mut Issues, field: &str, region: &str) {
    let ok = !region.is_empty()
        && region.len() <= 64
        && region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        issues.push(field, "S3 region must be letters, digits and '-' (e.g. \"us-east-1\")");
    }
}

fn validate_endpoint(issues: &mut Issues, field: &str, endpoint: &str) -> Option<String> {
    let bad = |issues: &mut Issues, why: &str| {
        issues.push(field, format!("S3 endpoint {why}"));
        None
    };
    let Ok(uri) = endpoint.parse::<http::Uri>() else {
        return bad(issues, "must be a URL such as http://127.0.0.1:9000");
    };
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return bad(issues, "must start with http:// or https://"),
    }
    let Some(authority) = uri.authority() else {
        return bad(issues, "must name a host");
    };
    if authority.as_str().contains('@') {
        // Credentials belong in `credentials`, where they are kept secret.
        return bad(issues, "must not contain a user name or password");
    }
    if uri.query().is_some() {
        return bad(issues, "must not contain a query string");
    }
    Some(endpoint.trim_end_matches('/').to_owned())
}

struct Fields<'a> {
    bucket: Field<'a>,
    region: Field<'a>,
    endpoint: Field<'a>,
    force_path_style: Field<'a>,
    access_key_id: Field<'a>,
    secret_access_key: Field<'a>,
    session_token: Field<'a>,
    /// Whether credentials were given at all (absent: default chain).
    credentials_given: bool,
    credentials_required: bool,
    region_required: bool,
    signed_url_expiration: Field<'a>,
    multipart: Option<&'a Value>,
    retry: Option<&'a Value>,
    timeouts: Option<&'a Value>,
}

const OPTION_NAMES: &[&str] = &[
    "bucket",
    "region",
    "endpoint",
    "forcePathStyle",
    "credentials",
    "signedUrlExpiration",
    "multipart",
    "retry",
    "timeouts",
];

fn parse(fields: Fields, mut issues: Issues) -> Result<BackendConfig, ConfigError> {
    let bucket = issues.required_string(&fields.bucket, "S3 bucket");
    if let Some(b) = &bucket {
        validate_bucket(&mut issues, &fields.bucket.name, b);
    }

    let region = if fields.region_required {
        issues.required_string(&fields.region, "S3 region")
    } else {
        issues.string(&fields.region).or_else(|| Some(DEFAULT_REGION.to_owned()))
    };
    if let Some(r) = &region {
        validate_region(&mut issues, &fields.region.name, r);
    }

    let endpoint = issues
        .string(&fields.endpoint)
        .filter(|s| !s.trim().is_empty())
        .and_then(|e| validate_endpoint(&mut issues, &fields.endpoint.name, e.trim()));
    let endpoint_given = fields.endpoint.raw.is_some_and(|r| !matches!(r, Raw::Json(Value::Null)));
    let force_path_style = issues.bool(&fields.force_path_style).unwrap_or(endpoint_given);

    let credentials = if fields.credentials_given || fields.credentials_required {
        let id = issues.required_string(&fields.access_key_id, "S3 access key id");
        let secret = issues.required_string(&fields.secret_access_key, "S3 secret access key");
        let token = issues.string(&fields.session_token).filter(|t| !t.is_empty());
        match (id, secret) {
            (Some(access_key_id), Some(secret)) => Some(StaticCredentials {
                access_key_id,
                secret_access_key: Secret(secret),
                session_token: token.map(Secret),
            }),
            _ => None,
        }
    } else {
        None
    };

    let signed_url_expiration = issues
        .integer(&fields.signed_url_expiration, 1, MAX_SIGNED_URL_EXPIRATION as u64, "signed URL expiration (seconds)")
        .map(|n| n as u32)
        .unwrap_or(DEFAULT_SIGNED_URL_EXPIRATION);

    let multipart = parse_multipart(&mut issues, fields.multipart);
    let retry = parse_retry(&mut issues, fields.retry);
    let timeouts = parse_timeouts(&mut issues, fields.timeouts);

    if !issues.0.is_empty() {
        return Err(ConfigError { issues: issues.0 });
    }
    Ok(BackendConfig {
        bucket: bucket.expect("checked"),
        region: region.expect("checked"),
        endpoint,
        force_path_style,
        credentials,
        signed_url_expiration,
        multipart,
        retry,
        timeouts,
    })
}

/// The object at `name`, with unknown members reported; `None` when absent.
fn sub_object<'a>(issues: &mut Issues, name: &str, value: Option<&'a Value>, members: &[&str]) -> Option<&'a Map<String, Value>> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => {
            for key in o.keys() {
                if !members.contains(&key.as_str()) {
                    issues.push(&format!("{name}.{key}"), "unknown option");
                }
            }
            Some(o)
        }
        Some(_) => {
            issues.push(name, format!("must be an object {{ {} }}", members.join(", ")));
            None
        }
    }
}

fn parse_retry(issues: &mut Issues, value: Option<&Value>) -> RetryConfig {
    let mut r = RetryConfig::default();
    let Some(obj) = sub_object(issues, "retry", value, &["maxAttempts", "baseDelayMs", "maxDelayMs"]) else {
        return r;
    };
    if let Some(n) = issues.integer(&json_field(obj, "retry.", "maxAttempts"), 1, 20, "attempts") {
        r.max_attempts = n as u32;
    }
    if let Some(n) = issues.integer(&json_field(obj, "retry.", "baseDelayMs"), 1, 60_000, "base delay (ms)") {
        r.base_delay_ms = n;
    }
    if let Some(n) = issues.integer(&json_field(obj, "retry.", "maxDelayMs"), 1, 300_000, "maximum delay (ms)") {
        r.max_delay_ms = n;
    }
    if r.max_delay_ms < r.base_delay_ms {
        issues.push("retry.maxDelayMs", "must not be less than retry.baseDelayMs");
    }
    r
}

fn parse_timeouts(issues: &mut Issues, value: Option<&Value>) -> TimeoutConfig {
    let mut t = TimeoutConfig::default();
    let Some(obj) = sub_object(issues, "timeouts", value, &["connectMs", "requestMs"]) else {
        return t;
    };
    if let Some(n) = issues.integer(&json_field(obj, "timeouts.", "connectMs"), 1, 600_000, "connect timeout (ms)") {
        t.connect_ms = n;
    }
    if let Some(n) = issues.integer(&json_field(obj, "timeouts.", "requestMs"), 1, 3_600_000, "request timeout (ms)") {
        t.request_ms = n;
    }
    t
}

fn parse_multipart(issues: &mut Issues, value: Option<&Value>) -> MultipartConfig {
    let mut m = MultipartConfig::default();
    let Some(obj) = sub_object(issues, "multipart", value, &["partSize", "queueSize", "threshold", "copyThreshold", "copyPartSize"]) else {
        return m;
    };
    if let Some(n) = issues.integer(&json_field(obj, "multipart.", "partSize"), MIN_PART_SIZE, MAX_PART_SIZE, "part size (bytes)") {
        m.part_size = n;
    }
    if let Some(n) = issues.integer(&json_field(obj, "multipart.", "queueSize"), 1, 64, "queue size") {
        m.queue_size = n as usize;
    }
    if let Some(n) = issues.integer(&json_field(obj, "multipart.", "threshold"), MIN_PART_SIZE, MAX_PART_SIZE, "multipart threshold (bytes)") {
        m.threshold = n;
    }
    if let Some(n) = issues.integer(&json_field(obj, "multipart.", "copyThreshold"), MIN_PART_SIZE, MAX_PART_SIZE, "copy threshold (bytes)") {
        m.copy_threshold = n;
    }
    if let Some(n) = issues.integer(&json_field(obj, "multipart.", "copyPartSize"), MIN_PART_SIZE, MAX_PART_SIZE, "copy part size (bytes)") {
        m.copy_part_size = n;
    }
    m
}

impl BackendConfig {
    /// Parses `S3BackendOptions` (as JSON, function-valued fields removed).
    pub fn from_options(options: &Value) -> Result<Self, ConfigError> {
        let mut issues = Issues::default();
        let empty = Map::new();
        let obj = match options {
            Value::Object(o) => o,
            _ => {
                issues.push("options", "must be an object");
                &empty
            }
        };
        for name in obj.keys() {
            if !OPTION_NAMES.contains(&name.as_str()) {
                issues.push(name, "unknown option");
            }
        }
        let (creds, credentials_given) = match obj.get("credentials") {
            None | Some(Value::Null) => (&empty, false),
            Some(Value::Object(c)) => (c, true),
            Some(_) => {
                issues.push("credentials", "must be an object { accessKeyId, secretAccessKey, sessionToken? }");
                (&empty, false)
            }
        };
        let fields = Fields {
            bucket: json_field(obj, "", "bucket"),
            region: json_field(obj, "", "region"),
            endpoint: json_field(obj, "", "endpoint"),
            force_path_style: json_field(obj, "", "forcePathStyle"),
            access_key_id: json_field(creds, "credentials.", "accessKeyId"),
            secret_access_key: json_field(creds, "credentials.", "secretAccessKey"),
            session_token: json_field(creds, "credentials.", "sessionToken"),
            credentials_given,
            credentials_required: false,
            region_required: false,
            signed_url_expiration: json_field(obj, "", "signedUrlExpiration"),
            multipart: obj.get("multipart"),
            retry: obj.get("retry"),
            timeouts: obj.get("timeouts"),
        };
        parse(fields, issues)
    }

    /// Reads the host's `STORAGE_S3_*` variables; `overrides` (options the
    /// caller passed explicitly) win over the environment. Region, bucket and
    /// both credential variables are required, as in the host's contract.
    pub fn from_env(env: &HashMap<String, String>, overrides: &Value) -> Result<Self, ConfigError> {
        let mut issues = Issues::default();
        let empty = Map::new();
        let over = match overrides {
            Value::Object(o) => o,
            Value::Null => &empty,
            _ => {
                issues.push("options", "must be an object");
                &empty
            }
        };
        for name in over.keys() {
            if !OPTION_NAMES.contains(&name.as_str()) {
                issues.push(name, "unknown option");
            }
        }
        // An empty variable counts as unset, as shells and .env files produce them.
        let var = |name: &str| env.get(name).map(|s| s.trim()).filter(|s| !s.is_empty());
        let pick = |option: &str, var_name: &str| -> Field {
            match over.get(option) {
                Some(v) => Field { name: option.to_owned(), raw: Some(Raw::Json(v)) },
                None => Field { name: var_name.to_owned(), raw: var(var_name).map(Raw::Env) },
            }
        };
        let over_creds = match over.get("credentials") {
            Some(Value::Object(c)) => Some(c),
            Some(Value::Null) | None => None,
            Some(_) => {
                issues.push("credentials", "must be an object { accessKeyId, secretAccessKey, sessionToken? }");
                None
            }
        };
        let (access_key_id, secret_access_key, session_token) = match over_creds {
            Some(c) => (
                json_field(c, "credentials.", "accessKeyId"),
                json_field(c, "credentials.", "secretAccessKey"),
                json_field(c, "credentials.", "sessionToken"),
            ),
            None => (
                Field { name: "STORAGE_S3_ACCESS_KEY_ID".into(), raw: var("STORAGE_S3_ACCESS_KEY_ID").map(Raw::Env) },
                Field { name: "STORAGE_S3_SECRET_ACCESS_KEY".into(), raw: var("STORAGE_S3_SECRET_ACCESS_KEY").map(Raw::Env) },
                Field { name: "STORAGE_S3_SESSION_TOKEN".into(), raw: var("STORAGE_S3_SESSION_TOKEN").map(Raw::Env) },
            ),
        };
        let fields = Fields {
            bucket: pick("bucket", "STORAGE_S3_BUCKET"),
            region: pick("region", "STORAGE_S3_REGION"),
            endpoint: pick("endpoint", "STORAGE_S3_ENDPOINT"),
            force_path_style: pick("forcePathStyle", "STORAGE_S3_FORCE_PATH_STYLE"),
            access_key_id,
            secret_access_key,
            session_token,
            credentials_given: true,
            credentials_required: true,
            region_required: true,
            signed_url_expiration: pick("signedUrlExpiration", "STORAGE_SIGNED_URL_EXPIRATION_SECONDS"),
            multipart: over.get("multipart"),
            retry: over.get("retry"),
            timeouts: over.get("timeouts"),
        };
        parse(fields, issues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn options_defaults() {
        let c = BackendConfig::from_options(&json!({ "bucket": "files" })).unwrap();
        assert_eq!(c.region, "us-east-1");
        assert!(!c.force_path_style);
        assert!(c.credentials.is_none());
        assert_eq!(c.signed_url_expiration, 900);
        assert_eq!(c.multipart, MultipartConfig::default());
    }

    #[test]
    fn endpoint_implies_path_style_unless_overridden() {
        let c = BackendConfig::from_options(&json!({ "bucket": "files", "endpoint": "http://127.0.0.1:9000/" })).unwrap();
        assert!(c.force_path_style);
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        let c = BackendConfig::from_options(&json!({ "bucket": "files", "endpoint": "http://localhost:9000", "forcePathStyle": false })).unwrap();
        assert!(!c.force_path_style);
    }

    #[test]
    fn every_bad_option_is_named_at_once() {
        let err = BackendConfig::from_options(&json!({
            "bucket": "",
            "region": 5,
            "endpoint": "ftp://x",
            "credentials": { "accessKeyId": "AK" },
            "signedUrlExpiration": 0,
            "bukcet": "typo",
        }))
        .unwrap_err();
        let fields: Vec<&str> = err.issues.iter().map(|i| i.field.as_str()).collect();
        for f in ["bucket", "region", "endpoint", "credentials.secretAccessKey", "signedUrlExpiration", "bukcet"] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        assert!(err.to_string().starts_with("Invalid storage configuration: "));
    }

    #[test]
    fn endpoint_with_userinfo_is_rejected_without_echoing_it() {
        let err = BackendConfig::from_options(&json!({ "bucket": "files", "endpoint": "http://user:hunter2@host:9000" })).unwrap_err();
        assert_eq!(err.issues[0].field, "endpoint");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn env_requires_host_variables_and_names_them() {
        let err = BackendConfig::from_env(&env(&[("STORAGE_S3_ENDPOINT", "http://127.0.0.1:9000")]), &Value::Null).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("STORAGE_S3_REGION: S3 region is required"), "{msg}");
        assert!(msg.contains("STORAGE_S3_BUCKET: S3 bucket is required"), "{msg}");
        assert!(msg.contains("STORAGE_S3_ACCESS_KEY_ID"), "{msg}");
        assert!(msg.contains("STORAGE_S3_SECRET_ACCESS_KEY"), "{msg}");
    }

    #[test]
    fn env_full_and_overrides_win() {
        let e = env(&[
            ("STORAGE_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("STORAGE_S3_REGION", "eu-west-1"),
            ("STORAGE_S3_BUCKET", "files"),
            ("STORAGE_S3_ACCESS_KEY_ID", "AK"),
            ("STORAGE_S3_SECRET_ACCESS_KEY", "SK"),
            ("STORAGE_SIGNED_URL_EXPIRATION_SECONDS", "60"),
        ]);
        let c = BackendConfig::from_env(&e, &Value::Null).unwrap();
        assert!(c.force_path_style);
        assert_eq!(c.signed_url_expiration, 60);
        assert_eq!(c.credentials.as_ref().unwrap().secret_access_key.expose(), "SK");
        let c = BackendConfig::from_env(&e, &json!({ "bucket": "other" })).unwrap();
        assert_eq!(c.bucket, "other");
    }

    #[test]
    fn env_expiration_must_be_positive_integer() {
        for bad in ["0", "-5", "1.5", "abc", "1e3", "604801"] {
            let e = env(&[
                ("STORAGE_S3_REGION", "us-east-1"),
                ("STORAGE_S3_BUCKET", "files"),
                ("STORAGE_S3_ACCESS_KEY_ID", "AK"),
                ("STORAGE_S3_SECRET_ACCESS_KEY", "SK"),
                ("STORAGE_SIGNED_URL_EXPIRATION_SECONDS", bad),
            ]);
            let err = BackendConfig::from_env(&e, &Value::Null).unwrap_err();
            assert_eq!(err.issues.len(), 1, "{bad}");
            assert_eq!(err.issues[0].field, "STORAGE_SIGNED_URL_EXPIRATION_SECONDS");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let c = BackendConfig::from_options(&json!({
            "bucket": "files",
            "credentials": { "accessKeyId": "AK", "secretAccessKey": "very-secret", "sessionToken": "tok-secret" }
        }))
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("very-secret") && !dbg.contains("tok-secret"), "{dbg}");
    }

    #[test]
    fn retry_and_timeouts() {
        let c = BackendConfig::from_options(&json!({ "bucket": "files", "retry": { "maxAttempts": 5, "baseDelayMs": 10 }, "timeouts": { "requestMs": 2000 } })).unwrap();
        assert_eq!(c.retry, RetryConfig { max_attempts: 5, base_delay_ms: 10, max_delay_ms: 5_000 });
        assert_eq!(c.timeouts, TimeoutConfig { connect_ms: 5_000, request_ms: 2_000 });
        let err = BackendConfig::from_options(&json!({ "bucket": "files", "retry": { "maxAttempts": 0, "baseDelayMs": 500, "maxDelayMs": 100 }, "timeouts": 5 })).unwrap_err();
        let fields: Vec<&str> = err.issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["retry.maxAttempts", "retry.maxDelayMs", "timeouts"]);
    }

    #[test]
    fn multipart_limits() {
        let err = BackendConfig::from_options(&json!({ "bucket": "files", "multipart": { "partSize": 1024, "queueSize": 0, "extra": 1 } })).unwrap_err();
        let fields: Vec<&str> = err.issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["multipart.extra", "multipart.partSize", "multipart.queueSize"]);
        let c = BackendConfig::from_options(&json!({ "bucket": "files", "multipart": { "partSize": 5242880, "queueSize": 2 } })).unwrap();
        assert_eq!(c.multipart.part_size, 5 * MIB);
        assert_eq!(c.multipart.queue_size, 2);
    }
}
