//! The request path without the SDK's orchestrator, for the requests the
//! backend sends most: HeadObject, GetObject, DeleteObject and PutObject.
//!
//! Why: the orchestrator (config bag, runtime components, a dozen
//! interceptors, endpoint rules, identity cache, tracing spans) costs more
//! client CPU than the rest of a small request together: ~100 µs of a
//! 1 KiB HEAD on our 2-core machine against ~30 µs for OpenDAL's whole
//! request (docs/benchmarks.md). Nothing in it varies between two requests
//! of one backend, so this module does its work once and keeps the result:
//!
//! - the operation's own request serializer and response deserializer,
//!   taken from the SDK's operation (the same headers, query and XML);
//! - the bucket's URL from the SDK's endpoint rules, resolved once (presign.rs);
//! - aws-sigv4, the SDK's signer, with the settings the SDK uses for S3;
//! - the same HTTP connector, so the same connection pool, as the SDK
//!   client (client.rs);
//! - the SDK's retry classification (classify.rs), our backoff, the same
//!   per-attempt timeout, and the same `onRequest` events (observe.rs).
//!
//! Answers become the SDK's own output and error types, so request.rs reads
//! them, and turns errors into ours, exactly as it does the SDK's. A backend
//! whose credentials come from the default chain, or whose endpoint needs
//! another auth scheme, sends everything through the SDK.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::http::{HttpConnector, SharedHttpConnector};
use aws_smithy_runtime_api::client::interceptors::context::{Input, OutputOrError};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
use aws_smithy_runtime_api::client::ser_de::{DeserializeResponse, SerializeRequest, SharedRequestSerializer, SharedResponseDeserializer};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::config_bag::{ConfigBag, FrozenLayer};
use aws_smithy_types::date_time::{DateTime, Format};

use crate::classify::retryable;
use crate::config::RetryConfig;
use crate::error::Operation;
use crate::observe::Observing;
use crate::presign::UrlSigner;
use crate::retry::backoff;

/// One S3 operation's serializer and deserializer, taken from the SDK.
pub(crate) struct Codec {
    name: &'static str,
    /// The operation's config layer: its serializer and deserializer.
    layer: FrozenLayer,
    /// The answer's body streams to the caller (GetObject).
    streaming: bool,
}

impl Codec {
    fn of(name: &'static str, operation: impl RuntimePlugin, streaming: bool) -> Self {
        let layer = operation.config().expect("an SDK operation has a config layer");
        assert!(layer.load::<SharedRequestSerializer>().is_some() && layer.load::<SharedResponseDeserializer>().is_some());
        Codec { name, layer, streaming }
    }

    fn serializer(&self) -> &SharedRequestSerializer {
        self.layer.load::<SharedRequestSerializer>().expect("checked in Codec::of")
    }

    fn deserializer(&self) -> &SharedResponseDeserializer {
        self.layer.load::<SharedResponseDeserializer>().expect("checked in Codec::of")
    }
}

/// The four operations sent directly.
pub(crate) struct Codecs {
    pub head: Codec,
    pub get: Codec,
    pub put: Codec,
    pub delete: Codec,
}

/// Sends requests directly; see the module docs.
pub(crate) struct Direct {
    connector: SharedHttpConnector,
    signer: UrlSigner,
    retry: RetryConfig,
    attempt_timeout: Duration,
    observing: Option<Observing>,
    pub(crate) ops: Codecs,
}

/// Why an attempt failed on this path where the SDK would have said so itself.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The per-attempt timeout fired (worded as the SDK words its own).
    #[error("operation attempt timeout occurred after {0:?}")]
    AttemptTimeout(Duration),
    /// The body could not be read whole (an error answer, or a small answer).
    #[error("reading the answer's body failed: {0}")]
    BodyFailed(String),
}

/// What the SDK's input and output types of an operation are.
pub(crate) trait Erased: fmt::Debug + Send + Sync + 'static {}
impl<T: fmt::Debug + Send + Sync + 'static> Erased for T {}

/// What the SDK's error type of an operation is.
pub(crate) trait OperationError: ProvideErrorMetadata + std::error::Error + Erased {}
impl<T: ProvideErrorMetadata + std::error::Error + Erased> OperationError for T {}

/// How one request is sent, beyond its input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sending {
    /// Attempts at most (1: a resumed download counts its GETs itself).
    pub attempts: u32,
    /// Bound on each attempt up to the answer's headers; `false` for bodies
    /// whose duration grows with their size (a watchdog bounds those).
    pub attempt_timeout: bool,
    /// Read a successful answer into the operation's output.
    read: bool,
}

impl Sending {
    /// A request without a body, or a download's headers.
    pub(crate) const SMALL: Sending = Sending { attempts: u32::MAX, attempt_timeout: true, read: true };
    /// The same, but a success is not read: only that it came (`exists()`
    /// needs no header of the answer). Failures are read as ever.
    pub(crate) const fn status_only(self) -> Sending {
        Sending { read: false, ..self }
    }

    /// One attempt, no retry (a resumed download counts its GETs itself).
    pub(crate) const ONCE: Sending = Sending { attempts: 1, ..Sending::SMALL };
    /// A request with a body: no per-attempt timeout (request.rs's
    /// no-progress watchdog bounds it, as it does the SDK's).
    pub(crate) const LONG: Sending = Sending { attempts: u32::MAX, attempt_timeout: false, read: true };
}

impl Direct {
    /// `None` unless the endpoint is plain SigV4 and the credentials static.
    pub(crate) fn new(
        signer: Option<UrlSigner>,
        connector: SharedHttpConnector,
        retry: RetryConfig,
        request_ms: u64,
        observing: Option<Observing>,
    ) -> Option<Self> {
        let signer = signer.filter(UrlSigner::has_static_credentials)?;
        use aws_sdk_s3::operation::{delete_object::DeleteObject, get_object::GetObject, head_object::HeadObject, put_object::PutObject};
        let ops = Codecs {
            head: Codec::of("HeadObject", HeadObject::new(), false),
            get: Codec::of("GetObject", GetObject::new(), true),
            put: Codec::of("PutObject", PutObject::new(), false),
            delete: Codec::of("DeleteObject", DeleteObject::new(), false),
        };
        Some(Direct { connector, signer, retry, attempt_timeout: Duration::from_millis(request_ms), observing, ops })
    }

    /// Sends `input` as `codec`'s operation, with retries; the answer as the
    /// SDK's `send()` would give it (`None` for a success `how` does not read:
    /// see [`Sending::status_only`]).
    pub(crate) async fn send<I, O, E>(
        &self,
        op: Operation,
        key: &str,
        codec: &Codec,
        input: I,
        how: Sending,
    ) -> Result<Option<O>, SdkError<E, HttpResponse>>
    where
        I: Erased,
        O: Erased,
        E: OperationError,
    {
        let mut bag = ConfigBag::base();
        let mut request = codec.serializer().serialize_input(Input::erase(input), &mut bag).map_err(SdkError::construction_failure)?;
        let path = request.uri().to_owned();
        request.set_uri(format!("{}{}", self.signer.bucket_url(), path)).map_err(SdkError::construction_failure)?;
        let attempts = how.attempts.min(self.retry.max_attempts).max(1);
        let mut attempt = 1;
        loop {
            // A body that cannot be sent twice (a stream) gets one attempt.
            let again = if attempt < attempts { request.try_clone() } else { None };
            let last = again.is_none();
            let sent = self.attempt(op, key, codec, request, attempt, how).await;
            match sent {
                Err(e) if !last && retryable(&e) => {
                    request = again.expect("kept for another attempt");
                    tokio::time::sleep(backoff(&self.retry, attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn attempt<O, E>(
        &self,
        op: Operation,
        key: &str,
        codec: &Codec,
        mut request: HttpRequest,
        attempt: u32,
        how: Sending,
    ) -> Result<Option<O>, SdkError<E, HttpResponse>>
    where
        O: Erased,
        E: OperationError,
    {
        if let Some(Err(e)) = self.signer.sign_headers(&mut request, SystemTime::now()) {
            return Err(SdkError::construction_failure(e));
        }
        let event = self.observing.as_ref().map(|o| o.attempt(op, key, codec.name, request.method(), attempt));
        let call = self.connector.call(request);
        let answer = if how.attempt_timeout {
            match tokio::time::timeout(self.attempt_timeout, call).await {
                Ok(answer) => answer,
                Err(_) => {
                    let timeout = SdkError::timeout_error(Failure::AttemptTimeout(self.attempt_timeout));
                    if let Some(event) = event {
                        event.failed(&timeout);
                    }
                    return Err(timeout);
                }
            }
        } else {
            call.await
        };
        let mut response = match answer {
            Ok(response) => response,
            Err(failure) => {
                if let Some(event) = event {
                    event.failed(&failure);
                }
                return Err(SdkError::dispatch_failure(failure));
            }
        };
        if let Some(event) = event {
            event.answered(response.status().as_u16(), response.headers().get("x-amz-request-id"));
        }
        if !how.read && response.status().is_success() {
            return Ok(None);
        }
        s3_expires(&mut response);
        let bag = ConfigBag::base();
        if codec.streaming {
            if let Some(out) = codec.deserializer().deserialize_streaming_with_config(&mut response, &bag) {
                return answer_of(out, response).map(Some);
            }
        }
        // Small answers and error answers are read whole.
        let body = std::mem::replace(response.body_mut(), SdkBody::taken());
        match ByteStream::new(body).collect().await {
            Ok(bytes) => *response.body_mut() = SdkBody::from(bytes.into_bytes()),
            Err(e) => return Err(SdkError::response_error(Failure::BodyFailed(e.to_string()), response)),
        }
        let out = codec.deserializer().deserialize_nonstreaming_with_config(&response, &bag);
        answer_of(out, response).map(Some)
    }
}

/// The output of an answer `Sending` asked to read.
pub(crate) fn output<O>(read: Option<O>) -> O {
    read.expect("a success is read unless Sending::status_only")
}

/// The deserializer's type-erased answer as the SDK's typed one.
fn answer_of<O, E>(out: OutputOrError, response: HttpResponse) -> Result<O, SdkError<E, HttpResponse>>
where
    O: Erased,
    E: std::error::Error + Erased,
{
    match out {
        Ok(output) => Ok(output.downcast::<O>().expect("the operation's output type")),
        Err(err) if err.is_operation_error() => {
            let mut taken = None;
            let _ = err.map_operation_error(|e| taken = Some(e));
            let err = taken.expect("an operation error").downcast::<E>().expect("the operation's error type");
            Err(SdkError::service_error(err, response))
        }
        Err(err) => Err(SdkError::response_error(err, response)),
    }
}

/// What the SDK's S3 `Expires` interceptor does before deserializing: an
/// `Expires` that is not an HTTP date is dropped, and its raw value kept
/// (as `expires_string`).
fn s3_expires(response: &mut HttpResponse) {
    let headers = response.headers_mut();
    let Some(raw) = headers.get("Expires").map(str::to_owned) else { return };
    if DateTime::from_str(&raw, Format::HttpDate).is_err() {
        headers.remove("Expires");
    }
    headers.insert("ExpiresString", raw);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{connector_settings, Http};
    use crate::config::BackendConfig;
    use aws_smithy_runtime_api::http::StatusCode;

    fn config(credentials: bool) -> BackendConfig {
        let mut options = serde_json::json!({ "bucket": "test-bucket", "region": "eu-west-3", "endpoint": "http://127.0.0.1:9" });
        if credentials {
            options["credentials"] = serde_json::json!({ "accessKeyId": "AKID", "secretAccessKey": "secret" });
        }
        BackendConfig::from_options(&options).unwrap()
    }

    fn direct(config: &BackendConfig) -> Option<Direct> {
        let connector = Http::new(config).connector(&connector_settings(config));
        Direct::new(UrlSigner::new(config), connector, config.retry, config.timeouts.request_ms, None)
    }

    #[tokio::test]
    async fn only_static_credentials_take_the_direct_path_and_its_codecs_are_the_sdk_operations() {
        let with = direct(&config(true)).expect("static credentials: direct");
        let names = [&with.ops.head, &with.ops.get, &with.ops.put, &with.ops.delete].map(|c| (c.name, c.streaming));
        assert_eq!(names, [("HeadObject", false), ("GetObject", true), ("PutObject", false), ("DeleteObject", false)]);
        assert!(direct(&config(false)).is_none(), "default chain: the SDK path");
    }

    #[test]
    fn expires_that_is_not_a_date_is_kept_raw_only() {
        let mut ok = HttpResponse::new(StatusCode::try_from(200).unwrap(), SdkBody::empty());
        ok.headers_mut().insert("Expires", "Wed, 21 Oct 2026 07:28:00 GMT");
        s3_expires(&mut ok);
        assert_eq!(ok.headers().get("Expires"), Some("Wed, 21 Oct 2026 07:28:00 GMT"));
        assert_eq!(ok.headers().get("ExpiresString"), Some("Wed, 21 Oct 2026 07:28:00 GMT"));
        let mut bad = HttpResponse::new(StatusCode::try_from(200).unwrap(), SdkBody::empty());
        bad.headers_mut().insert("Expires", "soon");
        s3_expires(&mut bad);
        assert_eq!(bad.headers().get("Expires"), None);
        assert_eq!(bad.headers().get("ExpiresString"), Some("soon"));
    }
}
