//! Request events for the caller's `onRequest` hook: one per HTTP attempt,
//! retries included, for logs and metrics.
//!
//! An SDK interceptor ([`Observer`]) sees each attempt go out and end; it is
//! registered only when a hook is given, so a backend without one pays
//! nothing. What the interceptor cannot see, the public operation and key
//! an attempt belongs to, request.rs puts in a task-local around each send
//! ([`observed`]); presigning runs no send there, so it fires nothing. An
//! attempt whose future is dropped (an abort, the no-progress watchdog) never
//! reaches the interceptor's end: the guard in [`observed`] reports it.
//!
//! An event carries no header, no URL and no query string, so no credential
//! and no signature can leak through it.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::error::Operation;

/// One HTTP attempt, as the `onRequest` hook receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestEvent {
    /// The public operation the attempt belongs to, e.g. [`Operation::Upload`].
    pub operation: Operation,
    /// The S3 API call, e.g. `PutObject`, `UploadPart`, `HeadObject`.
    pub s3_operation: String,
    /// HTTP method.
    pub method: String,
    /// HTTP status of the answer; `None` when none came.
    pub status: Option<u16>,
    /// 1 for the first attempt of a request, 2 for its first retry, ...
    pub attempt: u32,
    /// From sending the request to the answer's headers (a download's body
    /// streams afterwards), or to the failure.
    pub duration: Duration,
    /// `x-amz-request-id` of the answer, when it has one.
    pub request_id: Option<String>,
    /// Why no answer came (refused, reset, timed out, TLS), in short.
    pub error: Option<String>,
    /// The key concerned (`list`: the prefix); `None` for `deleteMany`.
    pub key: Option<String>,
    /// The bucket addressed.
    pub bucket: String,
}

/// The caller's hook; it must return at once (the binding queues the event
/// for JavaScript).
pub type RequestHook = Arc<dyn Fn(RequestEvent) + Send + Sync>;

/// An attempt that went out and has not ended yet.
struct InFlight {
    start: Instant,
    attempt: u32,
    method: String,
    s3_operation: String,
}

/// The public operation and key of the sends in a scope, and its attempt in flight.
struct Scope {
    operation: Operation,
    key: Option<String>,
    in_flight: Mutex<Option<InFlight>>,
}

tokio::task_local! {
    static SCOPE: Arc<Scope>;
}

/// Runs `send` (one SDK request, with its retries) with its operation and
/// key known to the [`Observer`]; without a hook, just runs it.
pub(crate) async fn observed<F: Future>(hook: Option<&Observing>, operation: Operation, key: &str, send: F) -> F::Output {
    let Some(observing) = hook else {
        return send.await;
    };
    let key = (operation != Operation::DeleteMany).then(|| key.to_owned());
    let scope = Arc::new(Scope { operation, key, in_flight: Mutex::new(None) });
    let _abandoned = Abandoned { scope: scope.clone(), observing };
    SCOPE.scope(scope, send).await
}

/// What request.rs keeps to report attempts: the hook and the bucket.
#[derive(Clone)]
pub(crate) struct Observing {
    hook: RequestHook,
    bucket: Arc<str>,
}

impl Observing {
    pub(crate) fn new(hook: RequestHook, bucket: &str) -> Self {
        Observing { hook, bucket: bucket.into() }
    }

    fn emit(&self, scope: &Scope, sent: InFlight, status: Option<u16>, request_id: Option<String>, error: Option<String>) {
        (self.hook)(RequestEvent {
            operation: scope.operation,
            s3_operation: sent.s3_operation,
            method: sent.method,
            status,
            attempt: sent.attempt,
            duration: sent.start.elapsed(),
            request_id,
            error,
            key: scope.key.clone(),
            bucket: self.bucket.to_string(),
        });
    }

    /// An attempt direct.rs sends (it runs no interceptor), reported as the
    /// [`Observer`] reports the SDK's: when it ends, or as abandoned when it
    /// is dropped first.
    pub(crate) fn attempt(&self, operation: Operation, key: &str, s3_operation: &str, method: &str, attempt: u32) -> Attempt<'_> {
        let key = (operation != Operation::DeleteMany).then(|| key.to_owned());
        let sent = InFlight { start: Instant::now(), attempt, method: method.to_owned(), s3_operation: s3_operation.to_owned() };
        Attempt { observing: self, scope: Scope { operation, key, in_flight: Mutex::new(None) }, sent: Some(sent) }
    }
}

/// An attempt of direct.rs in flight.
pub(crate) struct Attempt<'a> {
    observing: &'a Observing,
    scope: Scope,
    sent: Option<InFlight>,
}

impl Attempt<'_> {
    /// An answer came, with this status.
    pub(crate) fn answered(mut self, status: u16, request_id: Option<&str>) {
        if let Some(sent) = self.sent.take() {
            self.observing.emit(&self.scope, sent, Some(status), request_id.map(str::to_owned), None);
        }
    }

    /// No answer came.
    pub(crate) fn failed(mut self, err: &(dyn std::error::Error + 'static)) {
        if let Some(sent) = self.sent.take() {
            self.observing.emit(&self.scope, sent, None, None, Some(short_error(err)));
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(sent) = self.sent.take() {
            let why = "abandoned: the call was aborted or made no progress".to_owned();
            self.observing.emit(&self.scope, sent, None, None, Some(why));
        }
    }
}

/// Reports the attempt in flight when its scope is dropped before it ended.
struct Abandoned<'a> {
    scope: Arc<Scope>,
    observing: &'a Observing,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        let sent = self.scope.in_flight.lock().map(|mut f| f.take()).unwrap_or(None);
        if let Some(sent) = sent {
            let why = "abandoned: the call was aborted or made no progress".to_owned();
            self.observing.emit(&self.scope, sent, None, None, Some(why));
        }
    }
}

/// The SDK interceptor behind the hook.
pub(crate) struct Observer {
    observing: Observing,
}

impl Observer {
    pub(crate) fn new(observing: Observing) -> Self {
        Observer { observing }
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}

impl Intercept for Observer {
    fn name(&self) -> &'static str {
        "storage-s3-native onRequest"
    }

    /// The request is signed and about to go: the attempt starts.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let _ = SCOPE.try_with(|scope| {
            let sent = InFlight {
                start: Instant::now(),
                attempt: cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts()),
                method: context.request().method().to_owned(),
                s3_operation: cfg.load::<Metadata>().map_or_else(String::new, |m| m.name().to_owned()),
            };
            *scope.in_flight.lock().expect("in-flight attempt") = Some(sent);
        });
        Ok(())
    }

    /// The attempt ended: with an answer, a failure, or (presigning) before
    /// anything was sent, which is not reported.
    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let _ = SCOPE.try_with(|scope| {
            let Some(sent) = scope.in_flight.lock().expect("in-flight attempt").take() else { return };
            let response = context.response();
            let failure = match (response, context.output_or_error()) {
                (None, Some(Err(e))) => Some(short_error(e)),
                (None, _) => return, // stopped before sending (a presigned URL)
                _ => None,
            };
            let status = response.map(|r| r.status().as_u16());
            let request_id = response.and_then(|r| r.headers().get("x-amz-request-id")).map(str::to_owned);
            self.observing.emit(scope, sent, status, request_id, failure);
        });
        Ok(())
    }
}

/// The root cause of a failed attempt in a few words, e.g. "timeout",
/// "Connection refused (os error 111)", "invalid peer certificate: UnknownIssuer".
fn short_error(err: &(dyn std::error::Error + 'static)) -> String {
    let mut timeout = false;
    let mut last = err.to_string();
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(c) = e.downcast_ref::<aws_smithy_runtime_api::client::result::ConnectorError>() {
            timeout |= c.is_timeout();
        }
        last = e.to_string();
        // An io::Error's source() skips the error it wraps (rustls, hyper's).
        next = match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    let mut text = if timeout && !last.contains("timeout") && !last.contains("timed out") { format!("timeout: {last}") } else { last };
    if text.len() > 200 {
        let cut = (0..=200).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_error_reaches_inside_io_errors() {
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, "invalid peer certificate: UnknownIssuer");
        let outer = std::io::Error::other(inner);
        assert_eq!(short_error(&outer), "invalid peer certificate: UnknownIssuer");
    }
}
