//! Builds the aws-sdk-s3 client from a [`BackendConfig`], with the choices
//! that keep every S3-compatible service working, and its HTTP client: the
//! SDK's own (hyper, rustls), told which proxy to use (proxy.rs decides which
//! hosts go direct) and which CAs to trust.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation, StalledStreamProtectionConfig,
};
use aws_sdk_s3::Client;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::ConnectorBuilder;
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{RuntimeComponents, RuntimeComponentsBuilder};
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::classify::NoRetryOnRejectedCertificate;
use crate::config::BackendConfig;
use crate::observe::{Observer, Observing};
use crate::proxy::NoProxy;
use crate::retry::sdk_retry_config;

/// Builds the client synchronously: no network and no file reads happen
/// until the first request, so a constructor can call this. `observing`,
/// when given, is told of every HTTP attempt (observe.rs); without it no
/// interceptor is registered.
pub(crate) fn build_client(config: &BackendConfig, credentials: SharedCredentialsProvider, observing: Option<Observing>) -> Client {
    let region = Region::new(config.region.clone());
    let mut builder = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region.clone())
        .force_path_style(config.force_path_style)
        // MinIO, R2, B2 and Garage reject some of the newer default CRC
        // checksums; send and check them only where an operation demands it.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        // Stalls are detected by our own watchdogs (progress.rs, download.rs):
        // a Node source that pauses, or a reader that is slow, is not a
        // stalled network, and the SDK's guard cannot tell them apart.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .retry_config(sdk_retry_config(&config.retry))
        .retry_classifier(NoRetryOnRejectedCertificate)
        // The SDK's default retry quota (500 tokens shared by every client of
        // a region, 10 per failed retry, never refunded) silently cuts
        // maxAttempts to 1 for the whole process after a long outage.
        .retry_partition(RetryPartition::custom("storage-s3-native").token_bucket(TokenBucket::unlimited()).build())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(config.timeouts.connect_ms))
                // Requests without a body, and the headers of a download.
                .operation_attempt_timeout(Duration::from_millis(config.timeouts.request_ms))
                .build(),
        );
    builder = builder.credentials_provider(credentials).http_client(http_client(config));
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint.clone());
    }
    if let Some(observing) = observing {
        builder = builder.interceptor(Observer::new(observing));
    }
    Client::from_conf(builder.build())
}

/// The SDK's HTTP client, with our proxy decision and trust store. Nothing
/// is loaded here: each connector (one per timeout setting) is built on its
/// first request, and the system's root certificates only when TLS is used
/// without `tls.ca`.
fn http_client(config: &BackendConfig) -> SharedHttpClient {
    // A plain-HTTP endpoint (MinIO on a private network, tests) needs no TLS,
    // unless the proxy itself is https://: skipping it saves loading and
    // parsing the system's root certificates (~3–5 ms of every cold start).
    let endpoint_tls = config.endpoint.as_deref().is_none_or(|e| e.starts_with("https://"));
    let direct = connector_client(config, endpoint_tls, ProxyConfig::disabled());
    let Some(proxy) = config.effective_proxy() else {
        return direct;
    };
    let via_proxy = ProxyConfig::all(proxy.url.with_credentials()).expect("proxy.rs checked the URL");
    let proxied = connector_client(config, endpoint_tls || proxy.url.is_tls(), via_proxy);
    // One known host: effective_proxy() already applied NO_PROXY to it.
    if proxy.no_proxy.is_empty() || config.fixed_host().is_some() {
        return proxied;
    }
    SharedHttpClient::new(Routed { direct, proxied, no_proxy: Arc::new(proxy.no_proxy.clone()), cache: Mutex::default() })
}

/// An HTTP client whose connectors are the SDK's, with this proxy setting
/// (the SDK's own default client would read the proxy variables itself, on
/// the first request, with hyper-util's rules) and, with `tls`, rustls
/// trusting `tls.ca` alone when it is given, else the system's roots.
fn connector_client(config: &BackendConfig, tls: bool, proxy: ProxyConfig) -> SharedHttpClient {
    let trust = config.tls_ca.as_ref().map(|ca| TrustStore::empty().with_pem_certificate(ca.pem().as_bytes()));
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let mut builder = ConnectorBuilder::default();
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(proxy.clone()));
        if !tls {
            return builder.build_http();
        }
        let mut builder = builder.tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        if let Some(trust) = &trust {
            let context = TlsContext::builder().with_trust_store(trust.clone()).build().expect("a trust store is a valid TLS context");
            builder = builder.tls_context(context);
        }
        builder.build()
    })
}

/// Sends each request through the proxy unless `NO_PROXY` names its host
/// (virtual-hosted buckets and AWS's regional hosts are only known per request).
#[derive(Debug)]
struct Routed {
    direct: SharedHttpClient,
    proxied: SharedHttpClient,
    no_proxy: Arc<NoProxy>,
    /// One routed connector per timeout setting, as the SDK's clients cache theirs.
    cache: Mutex<Vec<(TimeoutKey, SharedHttpConnector)>>,
}

/// Connect and read timeouts: what tells connector settings apart.
type TimeoutKey = (Option<Duration>, Option<Duration>);

impl HttpClient for Routed {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut cache = self.cache.lock().expect("connector cache");
        if let Some((_, connector)) = cache.iter().find(|(k, _)| *k == key) {
            return connector.clone();
        }
        let connector = SharedHttpConnector::new(RoutedConnector {
            direct: self.direct.http_connector(settings, components),
            proxied: self.proxied.http_connector(settings, components),
            no_proxy: self.no_proxy.clone(),
        });
        cache.push((key, connector.clone()));
        connector
    }

    /// The SDK's clients set up their TLS (the system's roots) here, when
    /// the SDK client is built rather than on the first request.
    fn validate_base_client_config(&self, components: &RuntimeComponentsBuilder, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.direct.validate_base_client_config(components, cfg)?;
        self.proxied.validate_base_client_config(components, cfg)
    }
}

#[derive(Debug)]
struct RoutedConnector {
    direct: SharedHttpConnector,
    proxied: SharedHttpConnector,
    no_proxy: Arc<NoProxy>,
}

impl HttpConnector for RoutedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if self.no_proxy.bypasses_url(request.uri()) {
            self.direct.call(request)
        } else {
            self.proxied.call(request)
        }
    }
}

/// Static credentials, or the AWS default chain. The SDK caches what the
/// chain returns; other users (POST forms) ask the provider directly.
pub(crate) fn credentials_provider(config: &BackendConfig) -> SharedCredentialsProvider {
    match &config.credentials {
        Some(c) => SharedCredentialsProvider::new(Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.expose().to_owned(),
            c.session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "storage-s3-native",
        )),
        None => SharedCredentialsProvider::new(LazyDefaultChain { region: Region::new(config.region.clone()), chain: Default::default() }),
    }
}

/// The AWS default chain (env, profile, web identity, ECS, IMDS), created on
/// first use because creating it is async.
#[derive(Debug)]
struct LazyDefaultChain {
    region: Region,
    chain: tokio::sync::OnceCell<DefaultCredentialsChain>,
}

impl ProvideCredentials for LazyDefaultChain {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let chain = self.chain.get_or_init(|| DefaultCredentialsChain::builder().region(self.region.clone()).build()).await;
            chain.provide_credentials().await
        })
    }
}

/// Overrides for requests with a body: their duration grows with their size,
/// so the per-attempt timeout gives way to the no-progress watchdog.
pub(crate) fn body_request_override(config: &BackendConfig) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::default().timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_millis(config.timeouts.connect_ms))
            .disable_operation_attempt_timeout()
            .build(),
    )
}
