//! Presigned URLs signed on the calling thread.
//!
//! The SDK's `presigned()` runs the whole request orchestrator (interceptors,
//! endpoint rules, identity cache) for every URL: ~75–100 µs and an async hop
//! each. With static credentials nothing in that needs to be async or
//! repeated, so this module resolves the bucket's endpoint once with the
//! SDK's own endpoint rules and signs each URL with aws-sigv4, the SDK's
//! signer, using the settings the SDK uses for S3. A test checks that both
//! paths produce the same URL.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest, SignatureLocation, SigningParams,
    SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_http::label::{fmt_string as label_encode, EncodingStrategy};
use aws_smithy_http::query::fmt_string as query_encode;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use futures_util::FutureExt;

use crate::config::BackendConfig;

/// What a URL is signed for; validated by the caller.
#[derive(Debug, Clone, Default)]
pub(crate) struct UrlRequest<'a> {
    pub key: &'a str,
    /// `"GET"` or `"PUT"`.
    pub method: &'static str,
    pub expires_in: Duration,
    /// Whole seconds: SigV4 dates have no fraction.
    pub start: Option<SystemTime>,
    /// PUT: headers the uploader must send with exactly these values.
    pub content_type: Option<&'a str>,
    pub content_length: Option<u64>,
    /// GET: response header overrides (`response-content-*` parameters).
    pub response_content_type: Option<&'a str>,
    pub response_content_disposition: Option<&'a str>,
    /// Headers the requester must send as they are (server-side encryption), names in lower case.
    pub headers: &'a [(&'static str, String)],
}

/// Signs URLs for one bucket without the SDK's request pipeline.
#[derive(Debug, Clone)]
pub(crate) struct UrlSigner {
    /// Bucket URL from the SDK's endpoint rules, without a trailing slash,
    /// e.g. `http://127.0.0.1:9000/bucket` or `https://bucket.s3.eu-west-1.amazonaws.com`.
    bucket_url: String,
    region: String,
    /// Static credentials; `None` means the default chain (async), where the
    /// caller falls back to the SDK's presigning.
    identity: Option<Identity>,
}

impl UrlSigner {
    /// `None` when the endpoint rules give no plain URL for this bucket
    /// (then the SDK path is used for every URL).
    pub(crate) fn new(config: &BackendConfig) -> Option<Self> {
        let params = Params::builder()
            .bucket(config.bucket.clone())
            .region(config.region.clone())
            .set_endpoint(config.endpoint.clone())
            .force_path_style(config.force_path_style)
            .use_fips(false)
            .use_dual_stack(false)
            .accelerate(false)
            .build()
            .ok()?;
        // The default resolver is synchronous; its future is always ready.
        let endpoint = DefaultResolver::new().resolve_endpoint(&params).now_or_never()?.ok()?;
        // Auth schemes other than plain SigV4 (S3 Express, sigv4a access
        // points) need the SDK's machinery.
        let plain_sigv4 = endpoint.properties().get("authSchemes").and_then(|s| s.as_array()).is_none_or(|schemes| {
            schemes.iter().all(|s| s.as_object().and_then(|o| o.get("name")).and_then(|n| n.as_string()) == Some("sigv4"))
        });
        if !plain_sigv4 {
            return None;
        }
        let identity = config.credentials.as_ref().map(|c| {
            Identity::from(Credentials::new(
                c.access_key_id.clone(),
                c.secret_access_key.expose().to_owned(),
                c.session_token.as_ref().map(|t| t.expose().to_owned()),
                None,
                "storage-s3-native",
            ))
        });
        Some(UrlSigner { bucket_url: endpoint.url().trim_end_matches('/').to_owned(), region: config.region.clone(), identity })
    }

    /// Where a POST form goes: the bucket URL (`https://bucket.host/` when
    /// virtual-hosted, `http://host/bucket` when path-style).
    pub(crate) fn form_url(&self) -> String {
        let after_scheme = self.bucket_url.split_once("://").map_or(self.bucket_url.as_str(), |(_, rest)| rest);
        if after_scheme.contains('/') {
            self.bucket_url.clone()
        } else {
            format!("{}/", self.bucket_url)
        }
    }

    pub(crate) fn has_static_credentials(&self) -> bool {
        self.identity.is_some()
    }

    /// The signed URL, or `None` without static credentials.
    pub(crate) fn sign(&self, req: &UrlRequest<'_>) -> Option<Result<String, String>> {
        let identity = self.identity.as_ref()?;
        Some(self.sign_with(identity, req))
    }

    /// The bucket's URL (endpoint rules applied once), without a trailing slash.
    pub(crate) fn bucket_url(&self) -> &str {
        &self.bucket_url
    }

    /// Signs a request in its headers, as the SDK's SigV4 signer does for S3
    /// (`x-amz-content-sha256` of a body in memory, `UNSIGNED-PAYLOAD` for a
    /// stream). `None` without static credentials.
    pub(crate) fn sign_headers(&self, request: &mut HttpRequest, time: SystemTime) -> Option<Result<(), String>> {
        let identity = self.identity.as_ref()?;
        let settings = s3_settings(SignatureLocation::Headers, PayloadChecksumKind::XAmzSha256);
        let signed = (|| {
            let params = self.params(identity, time, settings)?;
            let body = request.body().bytes().map_or(SignableBody::UnsignedPayload, SignableBody::Bytes);
            let headers = request.headers().iter();
            let signable = SignableRequest::new(request.method(), request.uri(), headers, body).map_err(|e| e.to_string())?;
            let (instructions, _) = sign(signable, &params).map_err(|e| e.to_string())?.into_parts();
            Ok::<_, String>(instructions.into_parts().0)
        })();
        Some(signed.map(|headers| {
            for header in headers {
                request.headers_mut().insert(header.name().to_owned(), header.value().to_owned());
            }
        }))
    }

    /// SigV4 parameters for S3 in this bucket's region, at `time`.
    fn params<'a>(&'a self, identity: &'a Identity, time: SystemTime, settings: SigningSettings) -> Result<SigningParams<'a>, String> {
        let params = v4::SigningParams::builder().identity(identity).region(&self.region).name("s3").time(time).settings(settings);
        Ok(params.build().map_err(|e| e.to_string())?.into())
    }

    fn sign_with(&self, identity: &Identity, req: &UrlRequest<'_>) -> Result<String, String> {
        // Same URL as the SDK serializer: greedy label (slashes kept), then
        // the operation's query, then the signature.
        let mut url = String::with_capacity(self.bucket_url.len() + req.key.len() * 3 + 512);
        url.push_str(&self.bucket_url);
        url.push('/');
        url.push_str(&label_encode(req.key, EncodingStrategy::Greedy));
        let mut first = true;
        let mut param = |url: &mut String, name: &str, value: &str| {
            url.push(if first { '?' } else { '&' });
            first = false;
            url.push_str(name);
            url.push('=');
            url.push_str(&query_encode(value));
        };
        if let Some(v) = req.response_content_disposition {
            param(&mut url, "response-content-disposition", v);
        }
        if let Some(v) = req.response_content_type {
            param(&mut url, "response-content-type", v);
        }
        param(&mut url, "x-id", if req.method == "PUT" { "PutObject" } else { "GetObject" });

        let length = req.content_length.map(|n| n.to_string());
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(2 + req.headers.len());
        if let Some(n) = &length {
            headers.push(("content-length", n));
        }
        if let Some(ct) = req.content_type {
            headers.push(("content-type", ct));
        }
        headers.extend(req.headers.iter().map(|(name, value)| (*name, value.as_str())));

        let mut settings = s3_settings(SignatureLocation::QueryParams, PayloadChecksumKind::NoHeader);
        settings.expires_in = Some(req.expires_in);
        let params = self.params(identity, req.start.unwrap_or_else(SystemTime::now), settings)?;
        let signable = SignableRequest::new(req.method, Cow::Borrowed(url.as_str()), headers.into_iter(), SignableBody::UnsignedPayload)
            .map_err(|e| e.to_string())?;
        let (_, query) = sign(signable, &params).map_err(|e| e.to_string())?.into_parts().0.into_parts();
        for (name, value) in query {
            url.push('&');
            url.push_str(name);
            url.push('=');
            url.push_str(&query_encode(value.as_ref()));
        }
        Ok(url)
    }
}

/// S3's SigV4 variant (single URI encoding, no path normalisation, the
/// session token signed), with the signature where `location` says and the
/// payload hash as `checksum` says: the settings the SDK uses for S3.
fn s3_settings(location: SignatureLocation, checksum: PayloadChecksumKind) -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = checksum;
    settings.signature_location = location;
    settings.session_token_mode = SessionTokenMode::Include;
    settings
}

/// `Content-Disposition: attachment` naming `filename`, readable by every
/// browser: a plain ASCII `filename` fallback and the exact UTF-8 name as an
/// RFC 5987 `filename*` (RFC 6266 §4.3).
pub(crate) fn attachment_disposition(filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' && c != '%' { c } else { '_' })
        .collect();
    let mut value = format!("attachment; filename=\"{fallback}\"");
    if fallback != filename {
        value.push_str("; filename*=UTF-8''");
        for b in filename.bytes() {
            // RFC 5987 attr-char; everything else is percent-encoded.
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                value.push(b as char);
            } else {
                value.push_str(&format!("%{b:02X}"));
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackendConfig;
    use serde_json::json;

    fn config(extra: serde_json::Value) -> BackendConfig {
        let mut options = json!({
            "bucket": "test-bucket",
            "region": "eu-west-3",
            "credentials": { "accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" },
        });
        for (k, v) in extra.as_object().unwrap() {
            options[k] = v.clone();
        }
        BackendConfig::from_options(&options).unwrap()
    }

    /// The SDK's own presigned URL for the same request.
    async fn sdk_url(config: &BackendConfig, req: &UrlRequest<'_>) -> String {
        let client =
            crate::client::build_client(config, crate::client::credentials_provider(config), None, crate::client::Http::new(config));
        let presigning =
            aws_sdk_s3::presigning::PresigningConfig::builder().start_time(req.start.unwrap()).expires_in(req.expires_in).build().unwrap();
        let signed = if req.method == "PUT" {
            client
                .put_object()
                .bucket(&config.bucket)
                .key(req.key)
                .set_content_type(req.content_type.map(str::to_owned))
                .set_content_length(req.content_length.map(|n| n as i64))
                .presigned(presigning)
                .await
                .unwrap()
        } else {
            client
                .get_object()
                .bucket(&config.bucket)
                .key(req.key)
                .set_response_content_type(req.response_content_type.map(str::to_owned))
                .set_response_content_disposition(req.response_content_disposition.map(str::to_owned))
                .presigned(presigning)
                .await
                .unwrap()
        };
        signed.uri().to_owned()
    }

    /// Query parameters, sorted: the signature fixes the values, not the order.
    fn normalise(url: &str) -> (String, Vec<String>) {
        let (base, query) = url.split_once('?').unwrap();
        let mut pairs: Vec<String> = query.split('&').map(str::to_owned).collect();
        pairs.sort();
        (base.to_owned(), pairs)
    }

    #[tokio::test]
    async fn matches_the_sdk_presigner() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let disposition = attachment_disposition("Übung 1 (final).pdf");
        let cases = [
            json!({ "endpoint": "http://127.0.0.1:9000" }),
            json!({ "endpoint": "http://localhost:9000", "forcePathStyle": false }),
            json!({}),
            json!({ "forcePathStyle": true }),
            json!({ "endpoint": "https://minio.example.edu/s3/" }),
        ];
        for extra in cases {
            let mut extra = extra;
            extra["credentials"] = json!({ "accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "sessionToken": "tok/en+=" });
            let config = config(extra.clone());
            let signer = UrlSigner::new(&config).expect("plain endpoint");
            let requests = [
                UrlRequest {
                    key: "a/b c/ü+#?().pdf",
                    method: "GET",
                    expires_in: Duration::from_secs(900),
                    start: Some(start),
                    ..Default::default()
                },
                UrlRequest {
                    key: "k",
                    method: "GET",
                    expires_in: Duration::from_secs(60),
                    start: Some(start),
                    response_content_type: Some("application/pdf"),
                    response_content_disposition: Some(&disposition),
                    ..Default::default()
                },
                UrlRequest {
                    key: "up/load.bin",
                    method: "PUT",
                    expires_in: Duration::from_secs(604_800),
                    start: Some(start),
                    content_type: Some("image/png"),
                    content_length: Some(1234),
                    ..Default::default()
                },
            ];
            for req in &requests {
                let ours = signer.sign(req).unwrap().unwrap();
                let sdk = sdk_url(&config, req).await;
                assert_eq!(normalise(&ours), normalise(&sdk), "config {extra}, request {req:?}");
            }
        }
    }

    #[tokio::test]
    async fn encryption_headers_are_signed_as_the_sdk_signs_them() {
        use crate::encryption::{CustomerKey, Encryption};
        use aws_sdk_s3::types::ServerSideEncryption;
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let config = config(json!({ "endpoint": "http://127.0.0.1:9000" }));
        let client =
            crate::client::build_client(&config, crate::client::credentials_provider(&config), None, crate::client::Http::new(&config));
        let signer = UrlSigner::new(&config).unwrap();
        let customer = CustomerKey::new(&[5u8; 32]).unwrap();
        let kms = Encryption::Kms { key_id: Some("arn:aws:kms:eu-west-3:1:key/k".into()), bucket_key: Some(true) };
        for (method, encryption) in [
            ("PUT", Encryption::Aes256),
            ("PUT", kms),
            ("PUT", Encryption::Customer(customer.clone())),
            ("GET", Encryption::Customer(customer.clone())),
        ] {
            let headers = encryption.write_headers();
            let req = UrlRequest {
                key: "k",
                method,
                expires_in: Duration::from_secs(60),
                start: Some(start),
                headers: &headers,
                ..Default::default()
            };
            let ours = signer.sign(&req).unwrap().unwrap();
            let presigning =
                aws_sdk_s3::presigning::PresigningConfig::builder().start_time(start).expires_in(req.expires_in).build().unwrap();
            let sdk = match (&encryption, method) {
                (Encryption::Customer(k), "GET") => client
                    .get_object()
                    .bucket(&config.bucket)
                    .key("k")
                    .sse_customer_algorithm("AES256")
                    .sse_customer_key(k.expose_base64())
                    .sse_customer_key_md5(k.md5_base64())
                    .presigned(presigning)
                    .await
                    .unwrap(),
                (Encryption::Customer(k), _) => client
                    .put_object()
                    .bucket(&config.bucket)
                    .key("k")
                    .sse_customer_algorithm("AES256")
                    .sse_customer_key(k.expose_base64())
                    .sse_customer_key_md5(k.md5_base64())
                    .presigned(presigning)
                    .await
                    .unwrap(),
                (Encryption::Aes256, _) => client
                    .put_object()
                    .bucket(&config.bucket)
                    .key("k")
                    .server_side_encryption(ServerSideEncryption::Aes256)
                    .presigned(presigning)
                    .await
                    .unwrap(),
                (Encryption::Kms { key_id, bucket_key }, _) => client
                    .put_object()
                    .bucket(&config.bucket)
                    .key("k")
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .set_ssekms_key_id(key_id.clone())
                    .set_bucket_key_enabled(*bucket_key)
                    .presigned(presigning)
                    .await
                    .unwrap(),
            };
            assert_eq!(normalise(&ours), normalise(sdk.uri()), "{method} {encryption:?}");
            // The SDK's request sends these headers; the URL names them as signed.
            let mut sent: Vec<(String, String)> =
                sdk.headers().filter(|(n, _)| n.starts_with("x-amz-server-side")).map(|(n, v)| (n.to_lowercase(), v.to_owned())).collect();
            sent.sort();
            let mut expected: Vec<(String, String)> = headers.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect();
            expected.sort();
            assert_eq!(sent, expected, "{method} {encryption:?}");
            assert!(ours.contains("x-amz-server-side-encryption"), "signed headers named in the URL: {ours}");
            assert!(!ours.contains(customer.expose_base64()) && !ours.contains(&customer.expose_base64().replace('=', "%3D")), "{ours}");
        }
    }

    #[test]
    fn an_endpoint_path_stays_in_front_of_the_bucket() {
        let env = |endpoint: &str| -> std::collections::HashMap<String, String> {
            [
                ("STORAGE_S3_ENDPOINT", endpoint),
                ("STORAGE_S3_REGION", "us-east-1"),
                ("STORAGE_S3_BUCKET", "edge-bucket"),
                ("STORAGE_S3_ACCESS_KEY_ID", "AK"),
                ("STORAGE_S3_SECRET_ACCESS_KEY", "SK"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
        };
        let url = |config: &BackendConfig| {
            let signer = UrlSigner::new(config).unwrap();
            signer
                .sign(&UrlRequest { key: "a/b.txt", method: "GET", expires_in: Duration::from_secs(60), ..Default::default() })
                .unwrap()
                .unwrap()
        };
        let cases = [
            (config(json!({ "bucket": "bkt", "endpoint": "http://host:9000/s3/" })), "http://host:9000/s3/bkt/a/b.txt?"),
            (config(json!({ "bucket": "bkt", "endpoint": "http://host:9000/s3" })), "http://host:9000/s3/bkt/a/b.txt?"),
            (BackendConfig::from_env(&env("http://host/base"), &serde_json::Value::Null).unwrap(), "http://host/base/edge-bucket/a/b.txt?"),
            (
                BackendConfig::from_env(&env("http://host/base/"), &serde_json::Value::Null).unwrap(),
                "http://host/base/edge-bucket/a/b.txt?",
            ),
            (
                config(json!({ "bucket": "bkt", "endpoint": "http://host:9000/s3/", "forcePathStyle": false })),
                "http://bkt.host:9000/s3/a/b.txt?",
            ),
            (config(json!({ "bucket": "bkt", "endpoint": "http://host:9000" })), "http://host:9000/bkt/a/b.txt?"),
        ];
        for (config, prefix) in cases {
            let signed = url(&config);
            assert!(signed.starts_with(prefix), "{:?}: {signed}", config.endpoint);
        }
    }

    #[test]
    fn default_chain_has_no_synchronous_signer() {
        let config = BackendConfig::from_options(&json!({ "bucket": "test-bucket" })).unwrap();
        let signer = UrlSigner::new(&config).unwrap();
        assert!(!signer.has_static_credentials());
        assert!(signer.sign(&UrlRequest { key: "k", method: "GET", ..Default::default() }).is_none());
    }

    #[test]
    fn disposition_has_an_ascii_fallback_and_the_exact_name() {
        assert_eq!(attachment_disposition("report.pdf"), "attachment; filename=\"report.pdf\"");
        assert_eq!(
            attachment_disposition("Prüfung \"1\".pdf"),
            "attachment; filename=\"Pr_fung _1_.pdf\"; filename*=UTF-8''Pr%C3%BCfung%20%221%22.pdf"
        );
        assert_eq!(attachment_disposition("100%.txt"), "attachment; filename=\"100_.txt\"; filename*=UTF-8''100%25.txt");
    }
}
