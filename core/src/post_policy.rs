//! S3 POST Object (browser form upload) policy signing, SigV4.
//!
//! Pure: builds the POST policy, base64-encodes it and signs it; no I/O.
//! See AWS "Authenticating Requests: Browser-Based Uploads Using POST
//! (AWS Signature Version 4)": the base64 policy *is* the string to sign.

use std::time::{Duration, SystemTime};

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// What to sign. `now` is the signing time; the caller truncates it to
/// whole seconds so `X-Amz-Date` and the expiration agree with it.
/// `now + expires_in_secs` must be a representable date (caller bounds it).
pub struct PostPolicyInput<'a> {
    /// The form action: bucket URL (path-style or virtual-hosted), as given.
    pub url: String,
    /// Bucket name, matched exactly by the policy's `bucket` condition.
    pub bucket: &'a str,
    /// Object key the form uploads to, matched exactly.
    pub key: &'a str,
    /// When set: an exact-match condition and a `Content-Type` form field.
    pub content_type: Option<&'a str>,
    /// `content-length-range` is `[min_size, max_size]`, both inclusive.
    pub min_size: u64,
    /// Largest accepted upload, in bytes.
    pub max_size: u64,
    /// Policy lifetime in seconds, counted from `now`.
    pub expires_in_secs: u64,
    /// Signing time: `X-Amz-Date` and the signing key's date.
    pub now: SystemTime,
    /// Region in the credential scope, e.g. `us-east-1`.
    pub region: &'a str,
    /// Access key id, sent in `X-Amz-Credential`.
    pub access_key_id: &'a str,
    /// Secret key the policy is signed with; never put in a field.
    pub secret_access_key: &'a str,
    /// Temporary credentials' token, sent as `X-Amz-Security-Token`.
    pub session_token: Option<&'a str>,
    /// More fields the form must send as they are, each an exact-match
    /// condition (server-side encryption: `x-amz-server-side-encryption`, ...).
    pub extra_fields: &'a [(&'static str, String)],
}

/// The form to post: `fields` in order, then the file part last (S3 ignores
/// fields after the file).
pub struct PresignedPost {
    /// Where the form is posted: the input's `url`, unchanged.
    pub url: String,
    /// Form fields as (name, value), including `Policy` and `X-Amz-Signature`.
    pub fields: Vec<(String, String)>,
    /// When the policy expires: `now + expires_in_secs`.
    pub expires_at: SystemTime,
}

/// Builds the POST policy for `input`, signs it, and returns the form
/// fields a browser must send.
pub fn presign_post(input: &PostPolicyInput) -> PresignedPost {
    let now: DateTime<Utc> = input.now.into();
    let expires_at = input.now + Duration::from_secs(input.expires_in_secs);
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let credential = format!("{}/{}/{}/s3/aws4_request", input.access_key_id, now.format("%Y%m%d"), input.region);

    // Every form field except Policy/X-Amz-Signature/file must be covered by
    // a condition, so conditions and fields are built from the same values.
    let mut conditions: Vec<Value> = vec![
        json!({ "bucket": input.bucket }),
        json!({ "key": input.key }),
        json!(["content-length-range", input.min_size, input.max_size]),
    ];
    let mut fields: Vec<(String, String)> = vec![("key".into(), input.key.into())];
    if let Some(ct) = input.content_type {
        conditions.push(json!({ "Content-Type": ct }));
        fields.push(("Content-Type".into(), ct.into()));
    }
    for (name, value) in input.extra_fields {
        conditions.push(json!({ *name: value }));
        fields.push(((*name).to_owned(), value.clone()));
    }
    conditions.push(json!({ "x-amz-algorithm": ALGORITHM }));
    conditions.push(json!({ "x-amz-credential": credential }));
    conditions.push(json!({ "x-amz-date": amz_date }));
    fields.push(("X-Amz-Algorithm".into(), ALGORITHM.into()));
    fields.push(("X-Amz-Credential".into(), credential));
    fields.push(("X-Amz-Date".into(), amz_date));
    if let Some(token) = input.session_token {
        conditions.push(json!({ "x-amz-security-token": token }));
        fields.push(("X-Amz-Security-Token".into(), token.into()));
    }

    // serde_json does the escaping (quotes, control chars); non-ASCII stays
    // UTF-8, which is what S3 expects of the policy document.
    let expiration = DateTime::<Utc>::from(expires_at).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let policy = json!({ "expiration": expiration, "conditions": conditions });
    let policy_b64 = aws_smithy_types::base64::encode(policy.to_string());
    let signature = sign_policy(&policy_b64, input.secret_access_key, input.now, input.region);
    fields.push(("Policy".into(), policy_b64));
    fields.push(("X-Amz-Signature".into(), signature));

    PresignedPost { url: input.url.clone(), fields, expires_at }
}

/// Hex SigV4 signature of a base64 policy: HMAC-SHA256 with the signing key
/// for `date`'s UTC day / `region` / `s3`, via aws-sigv4's own primitives.
pub fn sign_policy(policy_b64: &str, secret_access_key: &str, date: SystemTime, region: &str) -> String {
    let key = generate_signing_key(secret_access_key, date, region, "s3");
    calculate_signature(key, policy_b64.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn input(key: &str) -> PostPolicyInput<'_> {
        PostPolicyInput {
            url: "http://127.0.0.1:9000/bucket".into(),
            bucket: "bucket",
            key,
            content_type: None,
            min_size: 1,
            max_size: 10_485_760,
            expires_in_secs: 3600,
            now: at(1_795_820_400), // 2026-11-27T23:00:00Z
            region: "us-east-1",
            access_key_id: "AKID",
            secret_access_key: "SECRET",
            session_token: None,
            extra_fields: &[],
        }
    }

    fn field<'p>(p: &'p PresignedPost, name: &str) -> Option<&'p str> {
        p.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn policy(p: &PresignedPost) -> Value {
        let b64 = field(p, "Policy").unwrap();
        serde_json::from_slice(&aws_smithy_types::base64::decode(b64).unwrap()).unwrap()
    }

    /// AWS docs, "Example: Browser-Based Upload using HTTP POST (Using AWS
    /// Signature Version 4)": the published base64 policy (864 chars) and
    /// signature. Also re-checked independently with Python hmac/hashlib.
    #[test]
    fn aws_documentation_example() {
        const POLICY_B64: &str = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
        let sig = sign_policy(
            POLICY_B64,
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            at(1_451_347_200), // 2015-12-29T00:00:00Z
            "us-east-1",
        );
        assert_eq!(sig, "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e");
    }

    #[test]
    fn policy_conditions_fields_and_escaping() {
        let key = "dir/\"quoted\" \\ é 日本.txt";
        let mut i = input(key);
        i.content_type = Some("image/png");
        let p = presign_post(&i);

        assert_eq!(p.url, "http://127.0.0.1:9000/bucket");
        let names: Vec<&str> = p.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["key", "Content-Type", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "Policy", "X-Amz-Signature"]);
        assert_eq!(field(&p, "key"), Some(key));
        assert_eq!(field(&p, "X-Amz-Credential"), Some("AKID/20261127/us-east-1/s3/aws4_request"));
        assert_eq!(field(&p, "X-Amz-Date"), Some("20261127T230000Z"));

        assert_eq!(
            policy(&p)["conditions"],
            json!([
                {"bucket": "bucket"},
                {"key": key},
                ["content-length-range", 1, 10_485_760],
                {"Content-Type": "image/png"},
                {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                {"x-amz-credential": "AKID/20261127/us-east-1/s3/aws4_request"},
                {"x-amz-date": "20261127T230000Z"},
            ])
        );

        // The signature covers exactly the Policy field as sent.
        let sig = sign_policy(field(&p, "Policy").unwrap(), "SECRET", i.now, "us-east-1");
        assert_eq!(field(&p, "X-Amz-Signature"), Some(sig.as_str()));
    }

    #[test]
    fn session_token_in_fields_and_conditions() {
        let mut i = input("k");
        i.session_token = Some("TOKEN/+=");
        let p = presign_post(&i);
        assert_eq!(field(&p, "X-Amz-Security-Token"), Some("TOKEN/+="));
        assert_eq!(field(&p, "Content-Type"), None);
        let conds = policy(&p)["conditions"].as_array().unwrap().clone();
        assert!(conds.contains(&json!({"x-amz-security-token": "TOKEN/+="})));
        // Form fields before Policy/Signature; the token right after X-Amz-Date.
        let names: Vec<&str> = p.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["key", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Security-Token", "Policy", "X-Amz-Signature"]
        );
    }

    #[test]
    fn expiration_is_now_plus_expires_in() {
        let p = presign_post(&input("k"));
        assert_eq!(p.expires_at, at(1_795_820_400 + 3600));
        assert_eq!(policy(&p)["expiration"], "2026-11-28T00:00:00.000Z");
    }
}
