//! Turns aws-sdk-s3 errors into the crate's typed [`Error`]: what the
//! service or the network said becomes an error kind in [`classify`], the
//! one place S3 codes and HTTP statuses are read.

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};

use crate::error::{Error, Operation, ServiceInfo};

/// An SDK error of `operation` on `key` in `bucket`.
pub(crate) fn from_sdk<E>(operation: Operation, key: &str, bucket: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_owned);
    let request_id = err.request_id().map(str::to_owned);
    let transport = matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_));
    let detail = match &err {
        SdkError::ServiceError(_) => match (err.message(), &code, status) {
            (Some(m), Some(c), _) => format!("{c}: {m}"),
            (None, Some(c), _) => c.clone(),
            (Some(m), None, _) => m.to_owned(),
            // An answer the SDK could not read (e.g. a 200 with an unexpected
            // XML root): keep the parser's reason.
            (None, None, Some(s)) => format!("HTTP {s}: {}", error_chain(&err)),
            (None, None, None) => "service error".to_owned(),
        },
        _ => tls_failure(&err).unwrap_or_else(|| error_chain(&err)),
    };
    let info = ServiceInfo { status, code, request_id, detail };
    classify(operation, key, bucket, info, transport)
}

/// The rustls error in a failed connection's chain, if TLS failed. hyper
/// and the SDK wrap it in `io::Error`s, whose `source()` skips what they
/// wrap, so those are opened with `get_ref()`.
fn rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// What to tell the caller when the TLS handshake failed: above all, a
/// certificate the client does not trust (a private CA) and what to do.
fn tls_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rustls::CertificateError as C;
    let tls = rustls_error(err)?;
    Some(match tls {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature | C::UnhandledCriticalExtension) => format!(
            "its TLS certificate is not trusted ({tls}); if a private CA signed it, pass that CA's certificate as the tls.ca option"
        ),
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            format!("its TLS certificate is not valid for this host name ({tls}); check the endpoint's host name")
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. }) => {
            format!("its TLS certificate is outside its validity period ({tls}); check the service's certificate and this machine's clock")
        }
        rustls::Error::InvalidCertificate(_) => format!("its TLS certificate was rejected ({tls})"),
        _ => format!("the TLS handshake failed ({tls})"),
    })
}

/// Tells the SDK not to retry a connection whose TLS certificate was
/// rejected: the next attempt would meet the same certificate (the SDK
/// otherwise retries it as an I/O error, `maxAttempts` times).
#[derive(Debug)]
pub(crate) struct NoRetryOnRejectedCertificate;

impl ClassifyRetry for NoRetryOnRejectedCertificate {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let rejected = ctx.output_or_error().and_then(|r| r.err()).and_then(|e| e.as_connector_error()).is_some_and(rejected_certificate);
        if rejected {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "no retry on a rejected TLS certificate"
    }
}

/// The connection failed because its TLS certificate was rejected.
pub(crate) fn rejected_certificate(err: &ConnectorError) -> bool {
    rustls_error(err).is_some_and(|tls| matches!(tls, rustls::Error::InvalidCertificate(_)))
}

/// Whether a failed attempt of direct.rs is tried again: what the SDK's
/// standard classifiers retry for S3 (its transient-error, error-code and
/// status-code classifiers), and [`NoRetryOnRejectedCertificate`].
pub(crate) fn retryable<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::DispatchFailure(failure) => {
            let connector = failure.as_connector_error();
            connector.is_some_and(|c| (c.is_io() || c.is_timeout() || c.as_other().is_some()) && !rejected_certificate(c))
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(_) => {
            let code = err.code().unwrap_or("");
            let status = err.raw_response().map_or(0, |r| r.status().as_u16());
            THROTTLING_ERRORS.contains(&code)
                || TRANSIENT_ERRORS.contains(&code)
                || code == "InternalError"
                || matches!(status, 500 | 502 | 503 | 504)
        }
        _ => false,
    }
}

/// "outer: inner: root cause", each level's Display once (the SDK's
/// DisplayErrorContext appends a Debug dump, too long for a message).
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// The error kind for what was said: S3's code first, then the HTTP status.
/// `transport`: no answer came (refused, reset, timed out).
pub(crate) fn classify(operation: Operation, key: &str, bucket: &str, info: ServiceInfo, transport: bool) -> Error {
    let key = key.to_owned();
    let bucket = bucket.to_owned();
    let status = info.status.unwrap_or(0);
    if transport && !(400..500).contains(&status) {
        return Error::Unavailable { operation, key, info };
    }
    match info.code.as_deref().unwrap_or("") {
        "NoSuchKey" => Error::NotFound { operation, key, bucket },
        "PreconditionFailed" => Error::PreconditionFailed { operation, key, info },
        "ConditionalRequestConflict" => Error::Conflict { operation, key, info },
        "NoSuchBucket" => Error::BucketNotFound { operation, key, bucket, info },
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken"
        | "TokenRefreshRequired" | "AuthorizationHeaderMalformed" | "InvalidSecurity"
        | "MissingSecurityHeader" | "RequestTimeTooSkewed"
        // s3s answers an unknown access key with NotSignedUp
        | "NotSignedUp" => Error::Auth { operation, key, info },
        "AccessDenied" | "AllAccessDisabled" | "AccountProblem" => Error::AccessDenied { operation, key, info },
        "SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout" | "Busy" => {
            Error::Unavailable { operation, key, info }
        }
        // The object's encryption and the request's do not fit: an SSE-C
        // object read without its key or with another, a plain object read
        // with one (S3 and Garage say "encrypt" or "decrypt" in the message).
        "InvalidRequest" | "InvalidArgument" if info.detail.to_ascii_lowercase().contains("crypt") => Error::InvalidArgument {
            operation,
            key,
            field: "serverSideEncryption".into(),
            message: format!(
                "the service refused the request's encryption parameters ({}); an object stored with a customer key (SSE-C) is read, \
                 copied and signed only with that key, and one stored without a customer key only without one",
                info.detail
            ),
        },
        "InvalidArgument" | "KeyTooLongError" | "EntityTooLarge" | "EntityTooSmall" | "MetadataTooLarge"
        | "InvalidRequest" | "IncompleteBody" | "BadDigest" | "InvalidDigest" | "InvalidBucketName" => {
            Error::InvalidArgument { operation, key, field: "request".into(), message: info.detail }
        }
        _ if status >= 500 => Error::Unavailable { operation, key, info },
        _ if status == 403 => Error::AccessDenied { operation, key, info },
        // A 404 without an S3 code (a HEAD, or a server that is not S3; the
        // SDK then names it "NotFound"): the key or the bucket is missing,
        // and request.rs asks the bucket which.
        "NotFound" | "" if status == 404 => Error::NotFound { operation, key, bucket },
        // A HEAD or a 304 has no body, so no code: the status says it.
        _ if status == 412 => Error::PreconditionFailed { operation, key, info },
        _ if status == 304 => Error::NotModified { operation, key, info },
        _ => Error::Unknown { operation, key, info },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::head_object::HeadObjectError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn answered(status: u16, code: &str) -> SdkError<HeadObjectError, HttpResponse> {
        let err = HeadObjectError::generic(ErrorMetadata::builder().code(code).build());
        SdkError::service_error(err, HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty()))
    }

    #[test]
    fn retryable_follows_the_sdk_standard_classifiers() {
        for (status, code) in
            [(503, "SlowDown"), (500, "InternalError"), (400, "RequestTimeout"), (502, ""), (504, ""), (400, "Throttling")]
        {
            assert!(retryable(&answered(status, code)), "{status} {code}");
        }
        for (status, code) in [(404, "NoSuchKey"), (403, "AccessDenied"), (412, "PreconditionFailed"), (400, "InvalidArgument"), (501, "")]
        {
            assert!(!retryable(&answered(status, code)), "{status} {code}");
        }
        let io = ConnectorError::io(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)));
        assert!(retryable(&SdkError::<HeadObjectError, HttpResponse>::dispatch_failure(io)));
        assert!(retryable(&SdkError::<HeadObjectError, HttpResponse>::timeout_error("attempt timeout")));
        let user = ConnectorError::user(Box::new(std::io::Error::other("bad request")));
        assert!(!retryable(&SdkError::<HeadObjectError, HttpResponse>::dispatch_failure(user)));
        assert!(!retryable(&SdkError::<HeadObjectError, HttpResponse>::construction_failure("no key")));
    }

    fn info(status: u16, code: &str) -> ServiceInfo {
        ServiceInfo { status: Some(status), code: Some(code.into()), request_id: None, detail: code.into() }
    }

    #[test]
    fn codes_map_to_reasons() {
        let cases = [
            (404, "NoSuchKey", "not_found"),
            (404, "NoSuchBucket", "bucket_not_found"),
            (403, "SignatureDoesNotMatch", "auth"),
            (403, "InvalidAccessKeyId", "auth"),
            (403, "AccessDenied", "access_denied"),
            (503, "SlowDown", "unavailable"),
            (500, "Whatever", "unavailable"),
            (400, "KeyTooLongError", "invalid_argument"),
            (409, "Conflict", "unknown"),
            (412, "PreconditionFailed", "precondition_failed"),
            (412, "", "precondition_failed"),
            (409, "ConditionalRequestConflict", "conflict"),
            (304, "", "not_modified"),
            // A lost multipart upload is not a missing object.
            (404, "NoSuchUpload", "unknown"),
        ];
        for (status, code, reason) in cases {
            assert_eq!(classify(Operation::Download, "k", "b", info(status, code), false).reason(), reason, "{code}");
        }
        // An SSE-C object read without its key (Garage's words; S3's say "Server Side Encryption").
        let encrypted = ServiceInfo { detail: "InvalidRequest: Bad request: Object is encrypted".into(), ..info(400, "InvalidRequest") };
        match classify(Operation::Download, "k", "b", encrypted, false) {
            Error::InvalidArgument { field, .. } => assert_eq!(field, "serverSideEncryption"),
            other => panic!("{other:?}"),
        }
        let no_code = ServiceInfo { status: Some(404), ..Default::default() };
        assert_eq!(classify(Operation::Download, "k", "b", no_code, false).reason(), "not_found");
        assert_eq!(classify(Operation::Download, "k", "b", info(404, "NotFound"), false).reason(), "not_found");
        let refused = ServiceInfo { detail: "connection refused".into(), ..Default::default() };
        assert_eq!(classify(Operation::Download, "k", "b", refused, true).reason(), "unavailable");
    }
}
