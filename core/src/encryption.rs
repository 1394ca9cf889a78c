//! Server-side encryption: what is asked of the service for an object
//! (SSE-S3, SSE-KMS, or SSE-C with the caller's key), checked once here for
//! the backend option, its environment variables and a call's override.
//!
//! An SSE-C key is a secret like the secret access key: it is kept as the
//! base64 and MD5 values S3's headers carry, and nothing here (`Debug`,
//! messages, [`Encryption::describe`]) ever shows it.

use std::fmt;

use md5::{Digest, Md5};
use serde_json::{json, Value};

/// The algorithm name S3 takes for SSE-C (`x-amz-server-side-encryption-customer-algorithm`).
pub(crate) const CUSTOMER_ALGORITHM: &str = "AES256";
/// An SSE-C key is a 256-bit AES key.
pub(crate) const CUSTOMER_KEY_BYTES: usize = 32;

/// A customer-provided key (SSE-C), as its request headers carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerKey {
    /// `x-amz-server-side-encryption-customer-key`: the key, base64.
    key_base64: String,
    /// `x-amz-server-side-encryption-customer-key-MD5`: the key's MD5, base64.
    md5_base64: String,
}

impl CustomerKey {
    /// A key of exactly 32 bytes; the error says what is wrong without the bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != CUSTOMER_KEY_BYTES {
            return Err(format!(
                "must be exactly {CUSTOMER_KEY_BYTES} bytes (a 256-bit AES key, e.g. crypto.randomBytes(32)), got {} bytes",
                bytes.len()
            ));
        }
        Ok(CustomerKey {
            key_base64: aws_smithy_types::base64::encode(bytes),
            md5_base64: aws_smithy_types::base64::encode(Md5::digest(bytes)),
        })
    }

    /// A key given as base64 text (an environment variable).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = aws_smithy_types::base64::decode(text.trim())
            .map_err(|_| format!("must be base64 of a {CUSTOMER_KEY_BYTES}-byte key (e.g. `openssl rand -base64 32`); it is not base64"))?;
        if bytes.len() != CUSTOMER_KEY_BYTES {
            return Err(format!(
                "must be base64 of a {CUSTOMER_KEY_BYTES}-byte key (e.g. `openssl rand -base64 32`); it decodes to {} bytes",
                bytes.len()
            ));
        }
        Self::new(&bytes)
    }

    /// The key, base64, for the request header; never log it.
    pub fn expose_base64(&self) -> &str {
        &self.key_base64
    }

    /// The key's MD5, base64 (S3 returns it too; it does not reveal the key).
    pub fn md5_base64(&self) -> &str {
        &self.md5_base64
    }
}

impl fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomerKey([redacted])")
    }
}

/// How the service encrypts an object at rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    /// SSE-S3: `x-amz-server-side-encryption: AES256`.
    Aes256,
    /// SSE-KMS: `aws:kms`, with the KMS key (else the account's default) and
    /// whether an S3 Bucket Key is used.
    Kms {
        /// `x-amz-server-side-encryption-aws-kms-key-id`: key id, ARN or alias.
        key_id: Option<String>,
        /// `x-amz-server-side-encryption-bucket-key-enabled`.
        bucket_key: Option<bool>,
    },
    /// SSE-C: the caller's key, sent with every request on the object.
    Customer(CustomerKey),
}

impl Encryption {
    /// The `type` as the caller writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            Encryption::Aes256 => "AES256",
            Encryption::Kms { .. } => "aws:kms",
            Encryption::Customer(_) => "SSE-C",
        }
    }

    /// The SSE-C key, when this is SSE-C.
    pub fn customer_key(&self) -> Option<&CustomerKey> {
        match self {
            Encryption::Customer(key) => Some(key),
            _ => None,
        }
    }

    /// What `describe()` shows: the type and the KMS key id; never an SSE-C key.
    pub fn describe(&self) -> Value {
        let mut out = json!({ "type": self.kind() });
        if let Encryption::Kms { key_id, bucket_key } = self {
            if let Some(id) = key_id {
                out["keyId"] = id.as_str().into();
            }
            if let Some(b) = bucket_key {
                out["bucketKey"] = (*b).into();
            }
        }
        out
    }

    /// The headers a request must carry to write an object so (PUT, POST
    /// form, signed PUT URL): names in lower case, as signed.
    pub fn write_headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Encryption::Aes256 => vec![("x-amz-server-side-encryption", "AES256".into())],
            Encryption::Kms { key_id, bucket_key } => {
                let mut h = vec![("x-amz-server-side-encryption", "aws:kms".to_owned())];
                if let Some(id) = key_id {
                    h.push(("x-amz-server-side-encryption-aws-kms-key-id", id.clone()));
                }
                if let Some(b) = bucket_key {
                    h.push(("x-amz-server-side-encryption-bucket-key-enabled", b.to_string()));
                }
                h
            }
            Encryption::Customer(key) => key.headers(),
        }
    }
}

impl CustomerKey {
    /// The three SSE-C headers (the key among them), names in lower case.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("x-amz-server-side-encryption-customer-algorithm", CUSTOMER_ALGORITHM.to_owned()),
            ("x-amz-server-side-encryption-customer-key", self.key_base64.clone()),
            ("x-amz-server-side-encryption-customer-key-md5", self.md5_base64.clone()),
        ]
    }
}

/// Server-side encryption as a caller gave it (an upload's or a copy's
/// `serverSideEncryption`), checked by [`EncryptionRequest::check`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EncryptionRequest {
    /// `type`: `AES256`, `aws:kms` or `SSE-C`.
    pub kind: String,
    /// `keyId` (aws:kms only).
    pub key_id: Option<String>,
    /// `bucketKey` (aws:kms only).
    pub bucket_key: Option<bool>,
    /// `key` (SSE-C only): the raw key bytes.
    pub key: Option<Vec<u8>>,
}

impl fmt::Debug for EncryptionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionRequest")
            .field("kind", &self.kind)
            .field("key_id", &self.key_id)
            .field("bucket_key", &self.bucket_key)
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// The one message for a `type` that is not one of the three.
fn unknown_type(kind: &str) -> String {
    let shown: String = kind.chars().take(40).collect();
    format!("must be 'AES256', 'aws:kms' or 'SSE-C', got {shown:?}")
}

/// A KMS key id: printable ASCII (it is sent as a header).
fn check_key_id(id: &str) -> Result<(), String> {
    if id.trim().is_empty() || !id.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        return Err("must be a KMS key id, key ARN or alias (non-empty printable ASCII)".into());
    }
    Ok(())
}

impl EncryptionRequest {
    /// Checks the request; an error is `(member, message)`, the member as
    /// the caller writes it after `serverSideEncryption.` (empty: `type`).
    pub fn check(self) -> Result<Encryption, (&'static str, String)> {
        let EncryptionRequest { kind, key_id, bucket_key, key } = self;
        let only_kms = |member: &'static str| Err((member, format!("applies to type 'aws:kms' only, not {kind:?}")));
        match kind.as_str() {
            "AES256" | "aws:kms" if key.is_some() => Err(("key", format!("applies to type 'SSE-C' only, not {kind:?}"))),
            "AES256" if key_id.is_some() => only_kms("keyId"),
            "AES256" if bucket_key.is_some() => only_kms("bucketKey"),
            "AES256" => Ok(Encryption::Aes256),
            "aws:kms" => {
                if let Some(id) = &key_id {
                    check_key_id(id).map_err(|why| ("keyId", why))?;
                }
                Ok(Encryption::Kms { key_id, bucket_key })
            }
            "SSE-C" if key_id.is_some() => only_kms("keyId"),
            "SSE-C" if bucket_key.is_some() => only_kms("bucketKey"),
            "SSE-C" => match key {
                None => Err(("key", format!("is required for type 'SSE-C' (a Buffer of {CUSTOMER_KEY_BYTES} bytes)"))),
                Some(bytes) => CustomerKey::new(&bytes).map(Encryption::Customer).map_err(|why| ("key", why)),
            },
            other => Err(("type", unknown_type(other))),
        }
    }
}

/// What HeadObject says of an object's encryption (`head().serverSideEncryption`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionInfo {
    /// `AES256`, `aws:kms`, `aws:kms:dsse` or `SSE-C`, as the service says.
    pub kind: String,
    /// The KMS key (aws:kms).
    pub key_id: Option<String>,
    /// Whether an S3 Bucket Key is used (aws:kms), when the service says.
    pub bucket_key: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: &str) -> EncryptionRequest {
        EncryptionRequest { kind: kind.into(), ..Default::default() }
    }

    #[test]
    fn customer_key_headers_are_base64_and_md5_and_never_printed() {
        let key = CustomerKey::new(&[7u8; 32]).unwrap();
        assert_eq!(key.expose_base64(), "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=");
        // md5 of 32 bytes of 0x07, computed independently (python hashlib)
        assert_eq!(key.md5_base64(), aws_smithy_types::base64::encode(Md5::digest([7u8; 32])));
        assert_eq!(format!("{key:?}"), "CustomerKey([redacted])");
        let e = Encryption::Customer(key.clone());
        assert!(!format!("{e:?}").contains(key.expose_base64()));
        assert_eq!(e.describe(), json!({ "type": "SSE-C" }));
        let r = EncryptionRequest { kind: "SSE-C".into(), key: Some(vec![7; 32]), ..Default::default() };
        assert!(!format!("{r:?}").contains("7, 7"), "{r:?}");
    }

    #[test]
    fn requests_are_checked_member_by_member() {
        assert_eq!(request("AES256").check().unwrap(), Encryption::Aes256);
        let kms = EncryptionRequest { key_id: Some("alias/school".into()), bucket_key: Some(true), ..request("aws:kms") };
        assert_eq!(kms.check().unwrap().describe(), json!({ "type": "aws:kms", "keyId": "alias/school", "bucketKey": true }));
        let member = |r: EncryptionRequest| r.check().unwrap_err().0;
        assert_eq!(member(request("aes256")), "type");
        assert_eq!(member(request("SSE-C")), "key");
        assert_eq!(member(EncryptionRequest { key: Some(vec![1; 16]), ..request("SSE-C") }), "key");
        assert_eq!(member(EncryptionRequest { key: Some(vec![1; 32]), ..request("AES256") }), "key");
        assert_eq!(member(EncryptionRequest { key_id: Some("k".into()), ..request("AES256") }), "keyId");
        assert_eq!(member(EncryptionRequest { key_id: Some("a\nb".into()), ..request("aws:kms") }), "keyId");
        let short = EncryptionRequest { key: Some(vec![1; 31]), ..request("SSE-C") }.check().unwrap_err().1;
        assert!(short.contains("exactly 32 bytes") && short.contains("got 31 bytes"), "{short}");
    }

    #[test]
    fn base64_keys_say_what_is_wrong_without_the_value() {
        let good = aws_smithy_types::base64::encode([9u8; 32]);
        assert_eq!(CustomerKey::from_base64(&good).unwrap(), CustomerKey::new(&[9u8; 32]).unwrap());
        let short = aws_smithy_types::base64::encode([9u8; 16]);
        let why = CustomerKey::from_base64(&short).unwrap_err();
        assert!(why.contains("decodes to 16 bytes") && !why.contains(&short), "{why}");
        let why = CustomerKey::from_base64("not base64!!").unwrap_err();
        assert!(why.contains("not base64") && !why.contains("!!"), "{why}");
    }
}
