//! Backend configuration: parsed from constructor options (JSON-shaped) or
//! from the host's `STORAGE_S3_*` environment variables, plus the proxy
//! variables (`HTTPS_PROXY`, `NO_PROXY`, ...) the process has when a backend
//! is built. Every bad field is reported at once, named as the caller wrote it.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::encryption::{CustomerKey, Encryption, EncryptionRequest};
use crate::proxy::{no_proxy_variable, proxy_variable, NoProxy, ProxyUrl};

/// Region used when the constructor options name none (the environment must).
pub const DEFAULT_REGION: &str = "us-east-1";
/// Lifetime, in seconds, of signed URLs and POST forms when no expiry is given (15 minutes).
pub const DEFAULT_SIGNED_URL_EXPIRATION: u32 = 900;
/// SigV4 presigned URLs cannot live longer than seven days.
pub const MAX_SIGNED_URL_EXPIRATION: u32 = 604_800;

const MIB: u64 = 1024 * 1024;
/// S3's limits on multipart part size.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// Largest part S3 accepts (5 GiB), also the most one CopyObject copies.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;

/// A secret string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value so that `Debug` shows `[redacted]`.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret in clear, for signing; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Credentials given in options or `STORAGE_S3_*` variables, used instead of
/// the AWS default provider chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// AWS access key id (not secret; may appear in signed URLs).
    pub access_key_id: String,
    /// Secret access key, used only to sign.
    pub secret_access_key: Secret,
    /// Token for temporary (STS) credentials; `None` for long-term keys.
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
        MultipartConfig {
            part_size: 5 * MIB,
            queue_size: 3,
            threshold: 256 * MIB,
            copy_threshold: MAX_PART_SIZE,
            copy_part_size: 512 * MIB,
        }
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
    /// Cap on any one backoff, in milliseconds; at least `base_delay_ms`.
    pub max_delay_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig { max_attempts: 3, base_delay_ms: 100, max_delay_ms: 5_000 }
    }
}

/// Network timeouts, in milliseconds.
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

/// The HTTP proxy S3 requests go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// The proxy (its credentials, if any, never shown).
    pub url: ProxyUrl,
    /// Where it was set: `proxy` (the option) or a variable, e.g. `HTTPS_PROXY`.
    pub from: String,
    /// Hosts reached directly (`NO_PROXY`); empty when the option set the proxy.
    pub no_proxy: NoProxy,
}

impl ProxySettings {
    /// Whether a request to `host:port` goes through the proxy.
    pub fn applies_to(&self, host: &str, port: u16) -> bool {
        !self.no_proxy.bypasses(host, port)
    }
}

/// CA certificates (PEM) that https:// connections trust instead of the
/// system's roots, checked when the backend is built.
#[derive(Clone, PartialEq, Eq)]
pub struct CaCertificates {
    pem: String,
    count: usize,
}

impl CaCertificates {
    /// Checks PEM text holding one or more certificates, each usable as a
    /// trust anchor (the SDK's TLS setup would otherwise fail on the first request).
    pub fn parse(pem: &str) -> Result<Self, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let ders =
            CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>().map_err(|e| format!("is not valid PEM ({e})"))?;
        if ders.is_empty() {
            return Err("holds no certificate (expected PEM text with -----BEGIN CERTIFICATE-----)".to_owned());
        }
        let count = ders.len();
        let mut roots = rustls::RootCertStore::empty();
        for (i, der) in ders.into_iter().enumerate() {
            roots.add(der).map_err(|e| format!("certificate {} of {count} cannot be trusted as a CA ({e})", i + 1))?;
        }
        Ok(CaCertificates { pem: pem.to_owned(), count })
    }

    /// The PEM text, as given.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// How many certificates it holds.
    pub fn count(&self) -> usize {
        self.count
    }
}

impl fmt::Debug for CaCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaCertificates({})", self.count)
    }
}

/// A validated backend configuration, from [`BackendConfig::from_options`]
/// or [`BackendConfig::from_env`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// Bucket every operation addresses.
    pub bucket: String,
    /// Region requests are signed for, e.g. `us-east-1`.
    pub region: String,
    /// Custom S3-compatible endpoint (MinIO, R2, ...), normalised; `None` for AWS.
    pub endpoint: Option<String>,
    /// Address the bucket in the path (`host/bucket/key`) rather than the host
    /// name; defaults to true when an endpoint is set.
    pub force_path_style: bool,
    /// `None`: the AWS default provider chain (env, profile, web identity, IMDS).
    pub credentials: Option<StaticCredentials>,
    /// Default lifetime of signed URLs and POST forms, in seconds.
    pub signed_url_expiration: u32,
    /// Part sizes and thresholds for multipart uploads and copies.
    pub multipart: MultipartConfig,
    /// Retry attempts and backoff, for the SDK and the engine alike.
    pub retry: RetryConfig,
    /// Connect and idle-request timeouts.
    pub timeouts: TimeoutConfig,
    /// The HTTP proxy, from the `proxy` option or the environment; `None`: direct.
    pub proxy: Option<ProxySettings>,
    /// `tls.ca`: the CAs https:// connections trust instead of the system's.
    pub tls_ca: Option<CaCertificates>,
    /// `serverSideEncryption`: how uploads and copies are encrypted at rest,
    /// unless a call says otherwise; an SSE-C key also goes with every read.
    pub encryption: Option<Encryption>,
}

/// One invalid configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The option or environment variable as the caller wrote it, e.g.
    /// `multipart.partSize` or `STORAGE_S3_BUCKET`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems, in the order found.
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
    /// The error as JSON for the binding: `message` plus `details.issues`
    /// (each `{ field, message }`) and `details.backend`.
    pub fn to_json(&self) -> Value {
        let issues: Vec<Value> = self.issues.iter().map(|i| serde_json::json!({ "field": i.field, "message": i.message })).collect();
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
                "true" => Some(true),
                "false" => Some(false),
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
    let ok = !region.is_empty() && region.len() <= 64 && region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
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
    Some(normalise_endpoint(uri.scheme_str().unwrap_or("https"), authority.as_str(), uri.path()))
}

/// The endpoint as the SDK's endpoint rules need it. A path is kept in front
/// of the bucket (`<path>/<bucket>/<key>` path-style, `<bucket>.<host><path>/<key>`
/// virtual-hosted), as the AWS SDKs do: the rules append the bucket to the
/// path as it is, so the path must end with `/`, or `http://host/s3` and
/// bucket `b` would address bucket `s3b`. Without a path, no slash.
fn normalise_endpoint(scheme: &str, authority: &str, path: &str) -> String {
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}{path}/")
    }
}

/// One whole-number option: where the caller writes it, its range, its
/// words in messages, and where it lives in [`BackendConfig`]. The table
/// drives parsing, error messages and [`BackendConfig::describe`].
struct IntOption {
    /// `group.name` as in the constructor's options, or a top-level name.
    path: &'static str,
    /// The host's environment variable, when it has one.
    env: Option<&'static str>,
    min: u64,
    max: u64,
    what: &'static str,
    get: fn(&BackendConfig) -> u64,
    set: fn(&mut BackendConfig, u64),
}

/// `IntOption` in one line: path, variable, range, words, field.
macro_rules! int_option {
    ($path:literal, $env:expr, $min:expr, $max:expr, $what:literal, $($field:ident).+ as $ty:ty) => {
        IntOption { path: $path, env: $env, min: $min, max: $max, what: $what, get: |c| c.$($field).+ as u64, set: |c, n| c.$($field).+ = n as $ty }
    };
}

#[rustfmt::skip]
const INT_OPTIONS: &[IntOption] = &[
    int_option!("signedUrlExpiration", Some("STORAGE_SIGNED_URL_EXPIRATION_SECONDS"), 1, MAX_SIGNED_URL_EXPIRATION as u64, "signed URL expiration (seconds)", signed_url_expiration as u32),
    int_option!("multipart.partSize", None, MIN_PART_SIZE, MAX_PART_SIZE, "part size (bytes)", multipart.part_size as u64),
    int_option!("multipart.queueSize", None, 1, 64, "queue size", multipart.queue_size as usize),
    int_option!("multipart.threshold", None, MIN_PART_SIZE, MAX_PART_SIZE, "multipart threshold (bytes)", multipart.threshold as u64),
    int_option!("multipart.copyThreshold", None, MIN_PART_SIZE, MAX_PART_SIZE, "copy threshold (bytes)", multipart.copy_threshold as u64),
    int_option!("multipart.copyPartSize", None, MIN_PART_SIZE, MAX_PART_SIZE, "copy part size (bytes)", multipart.copy_part_size as u64),
    int_option!("retry.maxAttempts", None, 1, 20, "attempts", retry.max_attempts as u32),
    int_option!("retry.baseDelayMs", None, 1, 60_000, "base delay (ms)", retry.base_delay_ms as u64),
    int_option!("retry.maxDelayMs", None, 1, 300_000, "maximum delay (ms)", retry.max_delay_ms as u64),
    int_option!("timeouts.connectMs", None, 1, 600_000, "connect timeout (ms)", timeouts.connect_ms as u64),
    int_option!("timeouts.requestMs", None, 1, 3_600_000, "request timeout (ms)", timeouts.request_ms as u64),
];

/// The host's `STORAGE_S3_*` variables, by the option (or credential) each sets.
const ENV_VARS: &[(&str, &str)] = &[
    ("bucket", "STORAGE_S3_BUCKET"),
    ("region", "STORAGE_S3_REGION"),
    ("endpoint", "STORAGE_S3_ENDPOINT"),
    ("forcePathStyle", "STORAGE_S3_FORCE_PATH_STYLE"),
    ("accessKeyId", "STORAGE_S3_ACCESS_KEY_ID"),
    ("secretAccessKey", "STORAGE_S3_SECRET_ACCESS_KEY"),
    ("sessionToken", "STORAGE_S3_SESSION_TOKEN"),
    ("serverSideEncryption", SSE_VAR),
    ("serverSideEncryption.keyId", SSE_KMS_KEY_VAR),
    ("serverSideEncryption.key", SSE_CUSTOMER_KEY_VAR),
];

/// `STORAGE_S3_SSE`: `AES256`, `aws:kms` or `SSE-C`.
const SSE_VAR: &str = "STORAGE_S3_SSE";
/// `STORAGE_S3_SSE_KMS_KEY_ID`: the KMS key (with `aws:kms`).
const SSE_KMS_KEY_VAR: &str = "STORAGE_S3_SSE_KMS_KEY_ID";
/// `STORAGE_S3_SSE_CUSTOMER_KEY`: the SSE-C key, base64 (with `SSE-C`).
const SSE_CUSTOMER_KEY_VAR: &str = "STORAGE_S3_SSE_CUSTOMER_KEY";

/// The variable of an option in [`ENV_VARS`].
fn var(option: &str) -> &'static str {
    ENV_VARS.iter().find(|(o, _)| *o == option).map(|(_, v)| *v).expect("a variable for every option read from the environment")
}

/// Top-level options that are not in [`INT_OPTIONS`].
const PLAIN_OPTIONS: &[&str] = &["bucket", "region", "endpoint", "forcePathStyle", "credentials", "proxy", "tls", "serverSideEncryption"];

/// Members of the `tls` option.
const TLS_OPTIONS: &[&str] = &["ca"];

fn is_option(name: &str) -> bool {
    PLAIN_OPTIONS.contains(&name) || INT_OPTIONS.iter().any(|o| o.path == name || o.path.split_once('.').is_some_and(|(g, _)| g == name))
}

/// The caller's values: constructor options (JSON), with the host's
/// environment variables beneath them when parsing `from_env`.
struct Source<'a> {
    options: &'a Map<String, Value>,
    env: Option<&'a HashMap<String, String>>,
    /// The process's proxy variables (other names are not read).
    vars: &'a HashMap<String, String>,
}

impl<'a> Source<'a> {
    /// An option, or else its environment variable (empty counts as unset,
    /// as shells and .env files produce them).
    fn field(&self, option: &str, var: &str) -> Field<'a> {
        match (self.options.get(option), self.env) {
            (Some(v), _) => Field { name: option.to_owned(), raw: Some(Raw::Json(v)) },
            (None, Some(env)) => {
                Field { name: var.to_owned(), raw: env.get(var).map(|s| s.trim()).filter(|s| !s.is_empty()).map(Raw::Env) }
            }
            (None, None) => Field { name: option.to_owned(), raw: None },
        }
    }

    /// Reports unknown top-level options, and unknown `STORAGE_S3_*` variables (a typo such
    /// as `STORAGE_S3_BUKET` would otherwise leave the real one unset).
    fn check_names(&self, issues: &mut Issues) {
        for name in self.options.keys() {
            if !is_option(name) {
                issues.push(name, "unknown option");
            }
        }
        let mut unknown: Vec<&String> = self
            .env
            .into_iter()
            .flat_map(|env| env.keys())
            .filter(|n| n.starts_with("STORAGE_S3_") && !ENV_VARS.iter().any(|(_, v)| v == n))
            .collect();
        unknown.sort();
        for name in unknown {
            let known: Vec<&str> = ENV_VARS.iter().map(|(_, v)| *v).collect();
            issues.push(name, format!("unknown variable (known: {})", known.join(", ")));
        }
    }

    /// The object of a group of options (`multipart`), its members checked.
    fn group(&self, group: &str, issues: &mut Issues) -> Option<&'a Map<String, Value>> {
        let members: Vec<&str> = INT_OPTIONS.iter().filter_map(|o| o.path.strip_prefix(group)?.strip_prefix('.')).collect();
        sub_object(issues, group, self.options.get(group), &members)
    }
}

fn parse(src: Source, credentials_required: bool, mut issues: Issues) -> Result<BackendConfig, ConfigError> {
    let from_env = src.env.is_some();
    src.check_names(&mut issues);
    let bucket_field = src.field("bucket", var("bucket"));
    let bucket = issues.required_string(&bucket_field, "S3 bucket");
    if let Some(b) = &bucket {
        validate_bucket(&mut issues, &bucket_field.name, b);
    }

    // The host's environment requires a region; options default to us-east-1.
    let region_field = src.field("region", var("region"));
    let region = if from_env {
        issues.required_string(&region_field, "S3 region")
    } else {
        issues.string(&region_field).or_else(|| Some(DEFAULT_REGION.to_owned()))
    };
    if let Some(r) = &region {
        validate_region(&mut issues, &region_field.name, r);
    }

    let endpoint_field = src.field("endpoint", var("endpoint"));
    let endpoint = issues
        .string(&endpoint_field)
        .filter(|s| !s.trim().is_empty())
        .and_then(|e| validate_endpoint(&mut issues, &endpoint_field.name, e.trim()));
    let force_path_style = issues.bool(&src.field("forcePathStyle", var("forcePathStyle"))).unwrap_or(endpoint.is_some());

    let credentials = parse_credentials(&src, credentials_required, &mut issues);
    let https = endpoint.as_deref().is_none_or(|e| e.starts_with("https://"));
    let proxy = parse_proxy(&src, https, &mut issues);
    let tls_ca = parse_tls(&src, &mut issues);
    let encryption = parse_encryption(&src, &mut issues);

    let mut config = BackendConfig {
        bucket: bucket.unwrap_or_default(),
        region: region.unwrap_or_default(),
        endpoint,
        force_path_style,
        credentials,
        signed_url_expiration: DEFAULT_SIGNED_URL_EXPIRATION,
        multipart: MultipartConfig::default(),
        retry: RetryConfig::default(),
        timeouts: TimeoutConfig::default(),
        proxy,
        tls_ca,
        encryption,
    };
    // Each group is checked where its first option stands in the table.
    let mut groups: HashMap<&str, Option<&Map<String, Value>>> = HashMap::new();
    for option in INT_OPTIONS {
        let field = match option.path.split_once('.') {
            Some((group, name)) => match *groups.entry(group).or_insert_with(|| src.group(group, &mut issues)) {
                Some(obj) => json_field(obj, &format!("{group}."), name),
                None => continue,
            },
            None => src.field(option.path, option.env.unwrap_or(option.path)),
        };
        if let Some(n) = issues.integer(&field, option.min, option.max, option.what) {
            (option.set)(&mut config, n);
        }
        if option.path == "retry.maxDelayMs" && config.retry.max_delay_ms < config.retry.base_delay_ms {
            issues.push("retry.maxDelayMs", "must not be less than retry.baseDelayMs");
        }
    }
    if !issues.0.is_empty() {
        return Err(ConfigError { issues: issues.0 });
    }
    Ok(config)
}

/// Static credentials from `credentials` or the `STORAGE_S3_*` variables;
/// `None` (the default chain) when none are given.
fn parse_credentials(src: &Source, required: bool, issues: &mut Issues) -> Option<StaticCredentials> {
    let empty = Map::new();
    let (creds, given) = match src.options.get("credentials") {
        None | Some(Value::Null) => (&empty, false),
        Some(Value::Object(c)) => (c, true),
        Some(_) => {
            issues.push("credentials", "must be an object { accessKeyId, secretAccessKey, sessionToken? }");
            return None;
        }
    };
    let field = |name: &str| match (given, src.env) {
        (false, Some(_)) => Source { options: &empty, env: src.env, vars: src.vars }.field(name, var(name)),
        _ => json_field(creds, "credentials.", name),
    };
    // From the environment: keys when any credential variable is set; none
    // at all means the AWS default chain (an IAM role, a profile).
    let from_env = !given && ["accessKeyId", "secretAccessKey", "sessionToken"].iter().any(|n| field(n).raw.is_some());
    let static_keys = given || (required && from_env);
    if !static_keys {
        return None;
    }
    let id = issues.required_string(&field("accessKeyId"), "S3 access key id");
    let secret = issues.required_string(&field("secretAccessKey"), "S3 secret access key");
    let token = issues.string(&field("sessionToken")).filter(|t| !t.is_empty());
    Some(StaticCredentials { access_key_id: id?, secret_access_key: Secret(secret?), session_token: token.map(Secret) })
}

/// The `proxy` option (a URL, or `false` for none), else the environment's
/// proxy for the endpoint's scheme with its `NO_PROXY` rules.
fn parse_proxy(src: &Source, https: bool, issues: &mut Issues) -> Option<ProxySettings> {
    let (from, value) = match src.options.get("proxy") {
        Some(Value::Bool(false)) => return None,
        Some(Value::String(url)) => ("proxy", url.as_str()),
        None | Some(Value::Null) => proxy_variable(src.vars, https)?,
        Some(_) => {
            issues.push("proxy", "must be a proxy URL such as http://proxy.internal:3128, or false for none");
            return None;
        }
    };
    let url = match ProxyUrl::parse(value) {
        Ok(url) => url,
        Err(message) => {
            let hint = if from == "proxy" { "" } else { "; set NO_PROXY, or the option proxy: false, to go without it" };
            issues.push(from, format!("{message}{hint}"));
            return None;
        }
    };
    // The option names the proxy for this backend: the environment's rules are not read.
    let no_proxy = if from == "proxy" { NoProxy::default() } else { no_proxy_variable(src.vars).map(|(_, n)| n).unwrap_or_default() };
    Some(ProxySettings { url, from: from.to_owned(), no_proxy })
}

/// `tls: { ca }`: PEM text (the JS layer turns Buffers into text).
fn parse_tls(src: &Source, issues: &mut Issues) -> Option<CaCertificates> {
    let tls = sub_object(issues, "tls", src.options.get("tls"), TLS_OPTIONS)?;
    match tls.get("ca") {
        None | Some(Value::Null) => None,
        Some(Value::String(pem)) => CaCertificates::parse(pem).map_err(|m| issues.push("tls.ca", m)).ok(),
        Some(_) => {
            issues.push("tls.ca", "must be PEM text (a string, a Buffer, or an array of them)");
            None
        }
    }
}

/// `serverSideEncryption: { type, keyId?, bucketKey?, key? }`, else (from
/// the environment) `STORAGE_S3_SSE` and its key variables. No message
/// repeats an SSE-C key.
fn parse_encryption(src: &Source, issues: &mut Issues) -> Option<Encryption> {
    const MEMBERS: &[&str] = &["type", "keyId", "bucketKey", "key"];
    let value = match src.options.get("serverSideEncryption") {
        None | Some(Value::Null) => return src.env.and_then(|env| encryption_from_env(env, issues)),
        Some(value) => value,
    };
    let o = sub_object(issues, "serverSideEncryption", Some(value), MEMBERS)?;
    let name = |member: &str| format!("serverSideEncryption.{member}");
    let kind = match o.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        None | Some(Value::Null) => {
            issues.push(&name("type"), "is required: 'AES256', 'aws:kms' or 'SSE-C'");
            return None;
        }
        Some(_) => {
            issues.push(&name("type"), "must be 'AES256', 'aws:kms' or 'SSE-C'");
            return None;
        }
    };
    let key_id = issues.string(&json_field(o, "serverSideEncryption.", "keyId"));
    let bucket_key = issues.bool(&json_field(o, "serverSideEncryption.", "bucketKey"));
    let key = match o.get("key") {
        None | Some(Value::Null) => None,
        Some(v) => match buffer_bytes(v) {
            Ok(bytes) => Some(bytes),
            Err(why) => {
                issues.push(&name("key"), why);
                return None;
            }
        },
    };
    let request = EncryptionRequest { kind, key_id, bucket_key, key };
    request.check().map_err(|(member, why)| issues.push(&name(member), why)).ok()
}

/// The bytes of a Buffer as JSON gives it (`{ type: 'Buffer', data: [...] }`).
fn buffer_bytes(value: &Value) -> Result<Vec<u8>, &'static str> {
    const NOT_A_BUFFER: &str = "must be a Buffer of 32 bytes";
    match value {
        Value::String(_) => Err("must be a Buffer of 32 bytes, not a string (for a key in base64: Buffer.from(text, 'base64'))"),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("Buffer") => {
            let data = o.get("data").and_then(Value::as_array).ok_or(NOT_A_BUFFER)?;
            data.iter().map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()).ok_or(NOT_A_BUFFER)).collect()
        }
        _ => Err(NOT_A_BUFFER),
    }
}

/// `STORAGE_S3_SSE` with `STORAGE_S3_SSE_KMS_KEY_ID` or `STORAGE_S3_SSE_CUSTOMER_KEY` (base64).
fn encryption_from_env(env: &HashMap<String, String>, issues: &mut Issues) -> Option<Encryption> {
    let get = |var: &str| env.get(var).map(|s| s.trim()).filter(|s| !s.is_empty());
    let (kms_key, customer_key) = (get(SSE_KMS_KEY_VAR), get(SSE_CUSTOMER_KEY_VAR));
    let Some(kind) = get(SSE_VAR) else {
        for (var, value) in [(SSE_KMS_KEY_VAR, kms_key), (SSE_CUSTOMER_KEY_VAR, customer_key)] {
            if value.is_some() {
                issues.push(var, format!("is set but {SSE_VAR} is not; set {SSE_VAR} too"));
            }
        }
        return None;
    };
    match (kind, customer_key) {
        ("SSE-C", None) => {
            issues.push(SSE_CUSTOMER_KEY_VAR, format!("is required when {SSE_VAR} is SSE-C: the 32-byte key in base64"));
            None
        }
        ("SSE-C", Some(_)) if kms_key.is_some() => {
            issues.push(SSE_KMS_KEY_VAR, format!("applies to {SSE_VAR}=aws:kms only"));
            None
        }
        ("SSE-C", Some(text)) => {
            CustomerKey::from_base64(text).map(Encryption::Customer).map_err(|why| issues.push(SSE_CUSTOMER_KEY_VAR, why)).ok()
        }
        (_, Some(_)) => {
            issues.push(SSE_CUSTOMER_KEY_VAR, format!("applies to {SSE_VAR}=SSE-C only"));
            None
        }
        (kind, None) => {
            let request = EncryptionRequest { kind: kind.to_owned(), key_id: kms_key.map(str::to_owned), ..Default::default() };
            let var = |member: &str| if member == "keyId" { SSE_KMS_KEY_VAR } else { SSE_VAR };
            request.check().map_err(|(member, why)| issues.push(var(member), why)).ok()
        }
    }
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

/// Options given as something other than an object: reported, read as empty.
fn as_object<'a>(value: &'a Value, empty: &'a Map<String, Value>, null_ok: bool, issues: &mut Issues) -> &'a Map<String, Value> {
    match value {
        Value::Object(o) => o,
        Value::Null if null_ok => empty,
        _ => {
            issues.push("options", "must be an object");
            empty
        }
    }
}

impl BackendConfig {
    /// Parses `S3BackendOptions` (as JSON, function-valued fields removed),
    /// with no proxy variables: see [`BackendConfig::from_options_and_env`].
    pub fn from_options(options: &Value) -> Result<Self, ConfigError> {
        Self::from_options_and_env(options, &HashMap::new())
    }

    /// Parses `S3BackendOptions`; `vars` holds the process's proxy variables
    /// (`HTTPS_PROXY`, `NO_PROXY`, ... and `REQUEST_METHOD`), read unless the
    /// `proxy` option is given. Other names in `vars` are ignored.
    pub fn from_options_and_env(options: &Value, vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut issues = Issues::default();
        let empty = Map::new();
        let options = as_object(options, &empty, false, &mut issues);
        parse(Source { options, env: None, vars }, false, issues)
    }

    /// Reads the host's `STORAGE_S3_*` variables (and the proxy variables,
    /// as [`BackendConfig::from_options_and_env`]); `overrides` (options the
    /// caller passed explicitly) win over the environment. Region, bucket and
    /// both credential variables are required, as in the host's contract.
    pub fn from_env(env: &HashMap<String, String>, overrides: &Value) -> Result<Self, ConfigError> {
        let mut issues = Issues::default();
        let empty = Map::new();
        let options = as_object(overrides, &empty, true, &mut issues);
        parse(Source { options, env: Some(env), vars: env }, true, issues)
    }

    /// The host and port every request goes to, when one is known before
    /// any request: a path-style endpoint. (Virtual-hosted requests go to
    /// `<bucket>.<host>`, and AWS's hosts follow the region and bucket.)
    pub fn fixed_host(&self) -> Option<(String, u16)> {
        let endpoint = self.endpoint.as_deref().filter(|_| self.force_path_style)?;
        let uri: http::Uri = endpoint.parse().ok()?;
        let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        Some((uri.host()?.to_owned(), port))
    }

    /// The proxy in force for this backend's requests: `None` when there is
    /// none, or when `NO_PROXY` exempts the one host every request goes to.
    pub fn effective_proxy(&self) -> Option<&ProxySettings> {
        let proxy = self.proxy.as_ref()?;
        match self.fixed_host() {
            Some((host, port)) if !proxy.applies_to(&host, port) => None,
            _ => Some(proxy),
        }
    }

    /// What the configuration shows of itself: every option in force, in
    /// the constructor's words, without secrets.
    pub fn describe(&self) -> Value {
        let mut out = serde_json::json!({
            "bucket": self.bucket,
            "region": self.region,
            "forcePathStyle": self.force_path_style,
            "credentials": if self.credentials.is_some() { "static" } else { "default-chain" },
        });
        if let Some(endpoint) = &self.endpoint {
            out["endpoint"] = endpoint.as_str().into();
        }
        if let Some(proxy) = self.effective_proxy() {
            out["proxy"] = serde_json::json!({ "url": proxy.url.shown(), "from": proxy.from });
            if !proxy.no_proxy.is_empty() {
                out["proxy"]["noProxy"] = proxy.no_proxy.as_str().into();
            }
        }
        if let Some(ca) = &self.tls_ca {
            out["tls"] = serde_json::json!({ "caCertificates": ca.count() });
        }
        if let Some(encryption) = &self.encryption {
            // The type and KMS key id; never an SSE-C key.
            out["serverSideEncryption"] = encryption.describe();
        }
        for option in INT_OPTIONS {
            let value = Value::from((option.get)(self));
            match option.path.split_once('.') {
                Some((group, name)) => {
                    out[group][name] = value;
                }
                None => out[option.path] = value,
            }
        }
        out
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
        let c = BackendConfig::from_options(&json!({ "bucket": "files", "endpoint": "http://localhost:9000", "forcePathStyle": false }))
            .unwrap();
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
        // No key variables: the default chain, not an error.
        assert!(!msg.contains("STORAGE_S3_ACCESS_KEY_ID"), "{msg}");
        // One key variable without the other names the missing one.
        let one = env(&[("STORAGE_S3_REGION", "r"), ("STORAGE_S3_BUCKET", "files"), ("STORAGE_S3_ACCESS_KEY_ID", "AK")]);
        let err = BackendConfig::from_env(&one, &Value::Null).unwrap_err();
        assert_eq!(err.issues.iter().map(|i| i.field.as_str()).collect::<Vec<_>>(), ["STORAGE_S3_SECRET_ACCESS_KEY"]);
    }

    #[test]
    fn env_without_keys_uses_the_default_chain_and_names_unknown_variables() {
        let c = BackendConfig::from_env(&env(&[("STORAGE_S3_REGION", "eu-west-1"), ("STORAGE_S3_BUCKET", "files")]), &Value::Null).unwrap();
        assert!(c.credentials.is_none());
        let typo = env(&[("STORAGE_S3_REGION", "eu-west-1"), ("STORAGE_S3_BUCKET", "files"), ("STORAGE_S3_BUKET", "x")]);
        let err = BackendConfig::from_env(&typo, &Value::Null).unwrap_err();
        assert_eq!(err.issues.len(), 1);
        assert_eq!(err.issues[0].field, "STORAGE_S3_BUKET");
        assert!(err.issues[0].message.starts_with("unknown variable"), "{}", err.issues[0].message);
        for bad in ["1", "0", "yes"] {
            let e = env(&[("STORAGE_S3_REGION", "r"), ("STORAGE_S3_BUCKET", "files"), ("STORAGE_S3_FORCE_PATH_STYLE", bad)]);
            assert_eq!(BackendConfig::from_env(&e, &Value::Null).unwrap_err().issues[0].field, "STORAGE_S3_FORCE_PATH_STYLE", "{bad}");
        }
        let e = env(&[("STORAGE_S3_REGION", "r"), ("STORAGE_S3_BUCKET", "files"), ("STORAGE_S3_FORCE_PATH_STYLE", "TRUE")]);
        assert!(BackendConfig::from_env(&e, &Value::Null).unwrap().force_path_style);
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
        let c = BackendConfig::from_options(
            &json!({ "bucket": "files", "retry": { "maxAttempts": 5, "baseDelayMs": 10 }, "timeouts": { "requestMs": 2000 } }),
        )
        .unwrap();
        assert_eq!(c.retry, RetryConfig { max_attempts: 5, base_delay_ms: 10, max_delay_ms: 5_000 });
        assert_eq!(c.timeouts, TimeoutConfig { connect_ms: 5_000, request_ms: 2_000 });
        let err = BackendConfig::from_options(
            &json!({ "bucket": "files", "retry": { "maxAttempts": 0, "baseDelayMs": 500, "maxDelayMs": 100 }, "timeouts": 5 }),
        )
        .unwrap_err();
        let fields: Vec<&str> = err.issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["retry.maxAttempts", "retry.maxDelayMs", "timeouts"]);
    }

    #[test]
    fn proxy_from_the_environment_for_the_endpoint_scheme() {
        let vars = env(&[("HTTP_PROXY", "http://plain:3128"), ("HTTPS_PROXY", "http://tls:3128"), ("NO_PROXY", "example.com")]);
        let plain = BackendConfig::from_options_and_env(&json!({ "bucket": "files", "endpoint": "http://10.0.0.1:9000" }), &vars).unwrap();
        let proxy = plain.effective_proxy().unwrap();
        assert_eq!((proxy.url.shown(), proxy.from.as_str()), ("http://plain:3128", "HTTP_PROXY"));
        // AWS (no endpoint) is https.
        let aws = BackendConfig::from_options_and_env(&json!({ "bucket": "files" }), &vars).unwrap();
        assert_eq!(aws.effective_proxy().unwrap().url.shown(), "http://tls:3128");
        assert_eq!(aws.describe()["proxy"], json!({ "url": "http://tls:3128", "from": "HTTPS_PROXY", "noProxy": "example.com" }));
        // NO_PROXY naming the one host of a path-style endpoint: no proxy at all.
        let vars = env(&[("HTTP_PROXY", "http://plain:3128"), ("no_proxy", "10.0.0.0/8")]);
        let exempt = BackendConfig::from_options_and_env(&json!({ "bucket": "files", "endpoint": "http://10.0.0.1:9000" }), &vars).unwrap();
        assert!(exempt.proxy.is_some() && exempt.effective_proxy().is_none());
        assert!(exempt.describe().get("proxy").is_none());
        // from_options reads no environment.
        assert!(BackendConfig::from_options(&json!({ "bucket": "files" })).unwrap().proxy.is_none());
    }

    #[test]
    fn proxy_option_wins_and_bad_values_are_named() {
        let vars = env(&[("HTTPS_PROXY", "socks5://user:hunter2@x:1080"), ("NO_PROXY", "*")]);
        let c = BackendConfig::from_options_and_env(&json!({ "bucket": "files", "proxy": "http://u:p@opt:8080" }), &vars).unwrap();
        let proxy = c.effective_proxy().unwrap();
        assert_eq!((proxy.url.shown(), proxy.from.as_str(), proxy.no_proxy.is_empty()), ("http://opt:8080", "proxy", true));
        assert!(!format!("{c:?}").contains("u:p@") && !c.describe().to_string().contains("u:p@"));
        assert!(BackendConfig::from_options_and_env(&json!({ "bucket": "files", "proxy": false }), &vars).unwrap().proxy.is_none());
        let err = BackendConfig::from_options_and_env(&json!({ "bucket": "files" }), &vars).unwrap_err();
        assert_eq!(err.issues[0].field, "HTTPS_PROXY");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = BackendConfig::from_options(&json!({ "bucket": "files", "proxy": true })).unwrap_err();
        assert_eq!(err.issues[0].field, "proxy");
        // from_env: the proxy variables sit in the same map as STORAGE_S3_*.
        let e = env(&[("STORAGE_S3_REGION", "r"), ("STORAGE_S3_BUCKET", "files"), ("https_proxy", "http://p:1")]);
        assert_eq!(BackendConfig::from_env(&e, &Value::Null).unwrap().proxy.unwrap().from, "https_proxy");
    }

    #[test]
    fn tls_ca_is_checked_when_built() {
        let ca = include_str!("../../__test__/fixtures/tls/ca.pem");
        let other = include_str!("../../__test__/fixtures/tls/other-ca.pem");
        let c = BackendConfig::from_options(&json!({ "bucket": "files", "tls": { "ca": format!("{ca}{other}") } })).unwrap();
        assert_eq!(c.tls_ca.as_ref().unwrap().count(), 2);
        assert_eq!(c.describe()["tls"], json!({ "caCertificates": 2 }));
        let key = include_str!("../../__test__/fixtures/tls/server.key");
        for bad in ["", "junk", key, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", &ca[..ca.len() / 2]] {
            let err = BackendConfig::from_options(&json!({ "bucket": "files", "tls": { "ca": bad } })).unwrap_err();
            assert_eq!(err.issues.iter().map(|i| i.field.as_str()).collect::<Vec<_>>(), ["tls.ca"], "{bad:?}: {err}");
        }
        let err = BackendConfig::from_options(&json!({ "bucket": "files", "tls": { "ca": 1, "verify": false } })).unwrap_err();
        assert_eq!(err.issues.iter().map(|i| i.field.as_str()).collect::<Vec<_>>(), ["tls.verify", "tls.ca"]);
    }

    #[test]
    fn server_side_encryption_from_options_and_environment() {
        let buffer = |bytes: &[u8]| json!({ "type": "Buffer", "data": bytes });
        let key = [0xabu8; 32];
        let b64 = aws_smithy_types::base64::encode(key);
        let options = |sse: Value| BackendConfig::from_options(&json!({ "bucket": "files", "serverSideEncryption": sse }));
        assert_eq!(options(json!({ "type": "AES256" })).unwrap().encryption, Some(Encryption::Aes256));
        let kms = options(json!({ "type": "aws:kms", "keyId": "alias/s", "bucketKey": true })).unwrap();
        assert_eq!(kms.describe()["serverSideEncryption"], json!({ "type": "aws:kms", "keyId": "alias/s", "bucketKey": true }));
        let c = options(json!({ "type": "SSE-C", "key": buffer(&key) })).unwrap();
        assert_eq!(c.encryption, Some(Encryption::Customer(CustomerKey::new(&key).unwrap())));
        assert_eq!(c.describe()["serverSideEncryption"], json!({ "type": "SSE-C" }));
        assert!(!c.describe().to_string().contains(&b64) && !format!("{c:?}").contains(&b64));
        // Every wrong shape is named, and no message repeats the key.
        let cases = [
            (json!({ "type": "SSE-C", "key": buffer(&key[..16]) }), "serverSideEncryption.key"),
            (json!({ "type": "SSE-C", "key": b64 }), "serverSideEncryption.key"),
            (json!({ "type": "SSE-C" }), "serverSideEncryption.key"),
            (json!({ "type": "AES256", "key": buffer(&key) }), "serverSideEncryption.key"),
            (json!({ "type": "sse-s3" }), "serverSideEncryption.type"),
            (json!({ "keyId": "k" }), "serverSideEncryption.type"),
            (json!({ "type": "AES256", "keyId": "k" }), "serverSideEncryption.keyId"),
            (json!({ "type": "aws:kms", "bucketKey": "yes" }), "serverSideEncryption.bucketKey"),
            (json!({ "type": "AES256", "algorithm": "x" }), "serverSideEncryption.algorithm"),
            (json!("AES256"), "serverSideEncryption"),
        ];
        for (sse, field) in cases {
            let err = options(sse.clone()).unwrap_err();
            assert_eq!(err.issues[0].field, field, "{sse}: {err}");
            assert!(!err.to_string().contains(&b64) && !err.to_string().contains("171, 171"), "{err}");
        }
        let short = options(json!({ "type": "SSE-C", "key": buffer(&key[..16]) })).unwrap_err().to_string();
        assert!(short.contains("exactly 32 bytes") && short.contains("got 16 bytes"), "{short}");

        let base = [("STORAGE_S3_REGION", "r"), ("STORAGE_S3_BUCKET", "files")];
        let from_env = |extra: &[(&str, &str)]| {
            let mut vars = env(&base);
            vars.extend(env(extra));
            BackendConfig::from_env(&vars, &Value::Null)
        };
        assert_eq!(from_env(&[]).unwrap().encryption, None);
        assert_eq!(from_env(&[("STORAGE_S3_SSE", "AES256")]).unwrap().encryption, Some(Encryption::Aes256));
        assert_eq!(
            from_env(&[("STORAGE_S3_SSE", "aws:kms"), ("STORAGE_S3_SSE_KMS_KEY_ID", "alias/s")]).unwrap().encryption,
            Some(Encryption::Kms { key_id: Some("alias/s".into()), bucket_key: None })
        );
        let c = from_env(&[("STORAGE_S3_SSE", "SSE-C"), ("STORAGE_S3_SSE_CUSTOMER_KEY", &b64)]).unwrap();
        assert_eq!(c.encryption, Some(Encryption::Customer(CustomerKey::new(&key).unwrap())));
        let short = aws_smithy_types::base64::encode(&key[..20]);
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[("STORAGE_S3_SSE", "SSE-C")], "STORAGE_S3_SSE_CUSTOMER_KEY"),
            (&[("STORAGE_S3_SSE", "SSE-C"), ("STORAGE_S3_SSE_CUSTOMER_KEY", &short)], "STORAGE_S3_SSE_CUSTOMER_KEY"),
            (&[("STORAGE_S3_SSE_CUSTOMER_KEY", &b64)], "STORAGE_S3_SSE_CUSTOMER_KEY"),
            (&[("STORAGE_S3_SSE", "AES256"), ("STORAGE_S3_SSE_CUSTOMER_KEY", &b64)], "STORAGE_S3_SSE_CUSTOMER_KEY"),
            (&[("STORAGE_S3_SSE", "AES256"), ("STORAGE_S3_SSE_KMS_KEY_ID", "k")], "STORAGE_S3_SSE_KMS_KEY_ID"),
            (&[("STORAGE_S3_SSE", "kms")], "STORAGE_S3_SSE"),
        ];
        for (extra, field) in cases {
            let err = from_env(extra).unwrap_err();
            assert_eq!(err.issues.iter().map(|i| i.field.as_str()).collect::<Vec<_>>(), [field], "{extra:?}: {err}");
            assert!(!err.to_string().contains(&b64) && !err.to_string().contains(&short), "{err}");
        }
        // The option wins over the variables.
        let mut vars = env(&base);
        vars.extend(env(&[("STORAGE_S3_SSE", "SSE-C")]));
        let c = BackendConfig::from_env(&vars, &json!({ "serverSideEncryption": { "type": "AES256" } })).unwrap();
        assert_eq!(c.encryption, Some(Encryption::Aes256));
    }

    #[test]
    fn multipart_limits() {
        let err = BackendConfig::from_options(&json!({ "bucket": "files", "multipart": { "partSize": 1024, "queueSize": 0, "extra": 1 } }))
            .unwrap_err();
        let fields: Vec<&str> = err.issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["multipart.extra", "multipart.partSize", "multipart.queueSize"]);
        let c = BackendConfig::from_options(&json!({ "bucket": "files", "multipart": { "partSize": 5242880, "queueSize": 2 } })).unwrap();
        assert_eq!(c.multipart.part_size, 5 * MIB);
        assert_eq!(c.multipart.queue_size, 2);
    }
}
