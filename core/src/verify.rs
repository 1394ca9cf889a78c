//! A download checked against the object's full-object checksum as its
//! bytes stream, across resumed answers, with the SDK's own algorithms
//! (checksum.rs). The SDK's validation stays off (client.rs): it would check
//! one answer's body only, and report a mismatch as an I/O error.
//!
//! Only a full-object value can be checked against the bytes: a composite
//! one (`…-N`, or `x-amz-checksum-type: COMPOSITE`) is a checksum of the
//! parts' checksums, and a ranged answer carries none.

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::ChecksumType;

use crate::checksum::{answered_checksum, Checksum, Hasher};
use crate::error::{Error, Operation, Result};

/// The checksum of the whole object an answer carries, if it can be
/// checked against the bytes.
fn full_object(found: Option<Checksum>, kind: Option<&ChecksumType>) -> Option<Checksum> {
    let found = found?;
    if matches!(kind, Some(ChecksumType::Composite)) || is_composite(&found.value) {
        return None;
    }
    Some(found)
}

/// `…-N`: a checksum of N parts' checksums.
fn is_composite(value: &str) -> bool {
    value.rsplit_once('-').is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The full-object checksum of a GetObject answer.
pub(crate) fn of_get(out: &GetObjectOutput) -> Option<Checksum> {
    full_object(answered_checksum!(out, None), out.checksum_type.as_ref())
}

/// The full-object checksum of a HeadObject answer.
pub(crate) fn of_head(out: &HeadObjectOutput) -> Option<Checksum> {
    full_object(answered_checksum!(out, None), out.checksum_type.as_ref())
}

/// The running checksum of a download, and the value it must reach.
pub(crate) struct Verifier {
    expected: Checksum,
    hasher: Hasher,
}

impl Verifier {
    pub(crate) fn new(expected: Checksum) -> Self {
        Verifier { hasher: expected.algorithm.hasher(), expected }
    }

    /// Bytes handed to the caller, in order.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// After the last byte: `ChecksumMismatch` unless the values agree.
    pub(crate) fn finish(self, key: &str) -> Result<()> {
        let actual = self.hasher.finish();
        if actual.value == self.expected.value {
            return Ok(());
        }
        Err(Error::ChecksumMismatch {
            operation: Operation::Download,
            key: key.to_owned(),
            algorithm: self.expected.algorithm.as_str().to_owned(),
            expected: self.expected.value,
            actual: actual.value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::ChecksumAlgorithm;

    fn sum(algorithm: ChecksumAlgorithm, value: &str) -> Checksum {
        Checksum { algorithm, value: value.into() }
    }

    #[test]
    fn composite_values_are_not_checked() {
        let crc = sum(ChecksumAlgorithm::Crc32c, "yZRlqg==");
        assert_eq!(full_object(Some(crc.clone()), None), Some(crc.clone()));
        assert_eq!(full_object(Some(crc.clone()), Some(&ChecksumType::FullObject)), Some(crc.clone()));
        assert_eq!(full_object(Some(crc), Some(&ChecksumType::Composite)), None);
        assert_eq!(full_object(Some(sum(ChecksumAlgorithm::Sha256, "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=-3")), None), None);
        // '-' is not base64, but a value ending in '-' alone is not composite either.
        assert!(!is_composite("abc-"));
        assert!(is_composite("abc-12"));
    }

    #[test]
    fn a_value_across_pieces_verifies_and_one_changed_byte_does_not() {
        // CRC32C of "hello world" (checksum.rs checks the known values).
        let mut ok = Verifier::new(sum(ChecksumAlgorithm::Crc32c, "yZRlqg=="));
        for piece in [b"hel".as_slice(), b"lo wo", b"rld"] {
            ok.update(piece);
        }
        assert!(ok.finish("k").is_ok());
        let mut bad = Verifier::new(sum(ChecksumAlgorithm::Crc32c, "yZRlqg=="));
        bad.update(b"hello world!");
        let err = bad.finish("k").unwrap_err();
        assert_eq!(err.reason(), "checksum_mismatch");
        assert!(err.to_string().contains("CRC32C checksum (expected yZRlqg==, computed "), "{err}");
    }
}
