//! End-to-end checksums of uploads: the algorithms S3 verifies
//! (`x-amz-checksum-*`), computed with the SDK's own implementations as the
//! bytes pass, so no second pass and nothing buffered beyond a part.
//!
//! A single PutObject sends the object's checksum; a multipart upload sends
//! each part's and, for the CRCs, the whole object's (S3's FULL_OBJECT
//! type, computed in order as the parts are read); SHA-256 has no full-object
//! form for multipart uploads in S3, so there the service computes its
//! COMPOSITE value (a checksum of the parts' checksums, "…-N").

use std::fmt;
use std::str::FromStr;

use aws_sdk_s3::types::{ChecksumAlgorithm as SdkAlgorithm, ChecksumType};
use aws_smithy_checksums::http::HttpChecksum;
use aws_smithy_checksums::ChecksumAlgorithm as SmithyAlgorithm;

/// A checksum algorithm S3 verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (ISO HDLC).
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// CRC-64/NVME.
    Crc64Nvme,
    /// SHA-256.
    Sha256,
}

impl ChecksumAlgorithm {
    /// Every algorithm, for [`FromStr`] and messages.
    pub const ALL: [ChecksumAlgorithm; 4] = [Self::Crc32, Self::Crc32c, Self::Crc64Nvme, Self::Sha256];

    /// The name in the API (`'CRC32'`, …), as S3 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha256 => "SHA256",
        }
    }

    pub(crate) fn sdk(self) -> SdkAlgorithm {
        match self {
            Self::Crc32 => SdkAlgorithm::Crc32,
            Self::Crc32c => SdkAlgorithm::Crc32C,
            Self::Crc64Nvme => SdkAlgorithm::Crc64Nvme,
            Self::Sha256 => SdkAlgorithm::Sha256,
        }
    }

    /// How a multipart upload's checksum covers the object: the whole
    /// object for the CRCs, the parts' checksums for SHA-256.
    pub(crate) fn multipart_type(self) -> ChecksumType {
        match self {
            Self::Sha256 => ChecksumType::Composite,
            _ => ChecksumType::FullObject,
        }
    }

    /// A fresh running checksum.
    pub(crate) fn hasher(self) -> Hasher {
        let smithy = match self {
            Self::Crc32 => SmithyAlgorithm::Crc32,
            Self::Crc32c => SmithyAlgorithm::Crc32c,
            Self::Crc64Nvme => SmithyAlgorithm::Crc64Nvme,
            Self::Sha256 => SmithyAlgorithm::Sha256,
        };
        Hasher { algorithm: self, state: smithy.into_impl() }
    }
}

impl FromStr for ChecksumAlgorithm {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|a| a.as_str() == name).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|a| format!("'{}'", a.as_str())).collect();
            format!("must be one of {}, got {name:?}", names.join(", "))
        })
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A checksum value, base64 as S3 sends it (`…-N` for a composite one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// Which algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// The value.
    pub value: String,
}

/// A checksum being computed.
pub(crate) struct Hasher {
    algorithm: ChecksumAlgorithm,
    state: Box<dyn HttpChecksum>,
}

impl Hasher {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.state.update(bytes);
    }

    /// The value of the bytes so far.
    pub(crate) fn finish(self) -> Checksum {
        let value = self.state.header_value().to_str().expect("base64 is ASCII").to_owned();
        Checksum { algorithm: self.algorithm, value }
    }

    /// The checksum of `chunks`.
    pub(crate) fn of<'a>(algorithm: ChecksumAlgorithm, chunks: impl IntoIterator<Item = &'a [u8]>) -> Checksum {
        let mut h = algorithm.hasher();
        for c in chunks {
            h.update(c);
        }
        h.finish()
    }
}

/// Sets a checksum value on any request builder that has the four
/// `checksum_<algorithm>` setters (PutObject, UploadPart, CompletedPart,
/// CompleteMultipartUpload).
macro_rules! with_checksum {
    ($builder:expr, $checksum:expr) => {{
        let builder = $builder;
        match $checksum {
            None => builder,
            Some(c) => {
                let c: &$crate::checksum::Checksum = c;
                let v = c.value.clone();
                match c.algorithm {
                    $crate::checksum::ChecksumAlgorithm::Crc32 => builder.checksum_crc32(v),
                    $crate::checksum::ChecksumAlgorithm::Crc32c => builder.checksum_crc32_c(v),
                    $crate::checksum::ChecksumAlgorithm::Crc64Nvme => builder.checksum_crc64_nvme(v),
                    $crate::checksum::ChecksumAlgorithm::Sha256 => builder.checksum_sha256(v),
                }
            }
        }
    }};
}
pub(crate) use with_checksum;

/// The checksum an answer carries (the first of the four S3 returns), for
/// the algorithm asked for, or any when `algorithm` is `None`. The values
/// are CRC32, CRC32C, CRC64NVME and SHA-256, in that order.
pub(crate) fn from_answer(algorithm: Option<ChecksumAlgorithm>, values: [Option<&str>; 4]) -> Option<Checksum> {
    ChecksumAlgorithm::ALL
        .into_iter()
        .zip(values)
        .filter(|(a, _)| algorithm.is_none_or(|want| want == *a))
        .find_map(|(algorithm, value)| value.filter(|v| !v.is_empty()).map(|v| Checksum { algorithm, value: v.to_owned() }))
}

/// [`from_answer`] of any SDK answer with the four `checksum_*` fields
/// (PutObject, CompleteMultipartUpload, HeadObject, GetObject).
macro_rules! answered_checksum {
    ($out:expr, $algorithm:expr) => {{
        let out = &$out;
        $crate::checksum::from_answer(
            $algorithm,
            [
                out.checksum_crc32.as_deref(),
                out.checksum_crc32_c.as_deref(),
                out.checksum_crc64_nvme.as_deref(),
                out.checksum_sha256.as_deref(),
            ],
        )
    }};
}
pub(crate) use answered_checksum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_s3s_base64() {
        // Known values of "hello world" (as S3 documents and the AWS CLI prints them).
        let of = |a| Hasher::of(a, [b"hello ".as_slice(), b"world".as_slice()]).value;
        assert_eq!(of(ChecksumAlgorithm::Crc32), "DUoRhQ==");
        assert_eq!(of(ChecksumAlgorithm::Crc32c), "yZRlqg==");
        assert_eq!(of(ChecksumAlgorithm::Sha256), "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=");
        assert_eq!("CRC64NVME".parse::<ChecksumAlgorithm>(), Ok(ChecksumAlgorithm::Crc64Nvme));
        assert!("crc32".parse::<ChecksumAlgorithm>().unwrap_err().contains("'CRC32', 'CRC32C', 'CRC64NVME', 'SHA256'"));
    }

    #[test]
    fn answers_give_the_algorithm_asked_for() {
        let c = from_answer(Some(ChecksumAlgorithm::Crc32c), [Some("a"), Some("b"), None, None]);
        assert_eq!(c, Some(Checksum { algorithm: ChecksumAlgorithm::Crc32c, value: "b".into() }));
        assert_eq!(from_answer(None, [None, None, Some("c"), None]).unwrap().algorithm, ChecksumAlgorithm::Crc64Nvme);
        assert_eq!(from_answer(Some(ChecksumAlgorithm::Sha256), [Some("a"), None, None, None]), None);
        assert_eq!(from_answer(None, [Some(""), Some("d"), None, None]).unwrap().value, "d");
    }
}
