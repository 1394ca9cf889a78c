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
use aws_smithy_async::rt::sleep::default_async_sleep;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::{Connector, ConnectorBuilder};
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
/// interceptor is registered. `http` is the connection pool it shares with
/// direct.rs.
pub(crate) fn build_client(
    config: &BackendConfig,
    credentials: SharedCredentialsProvider,
    observing: Option<Observing>,
    http: Http,
) -> Client {
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
    builder = builder.credentials_provider(credentials).http_client(SharedHttpClient::new(http));
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint.clone());
    }
    if let Some(observing) = observing {
        builder = builder.interceptor(Observer::new(observing));
    }
    Client::from_conf(builder.build())
}

/// The connector settings every request uses (the SDK derives the same from
/// the client's timeout config): requests with the same settings share one
/// connector, so one connection pool.
pub(crate) fn connector_settings(config: &BackendConfig) -> HttpConnectorSettings {
    HttpConnectorSettings::builder().connect_timeout(Duration::from_millis(config.timeouts.connect_ms)).build()
}

/// The SDK's HTTP client (hyper, rustls), with our proxy decision and trust
/// store, and one connector (one connection pool) per timeout setting,
/// shared by the SDK client and direct.rs. Nothing is loaded here: each
/// connector is built on its first request, and the system's root
/// certificates only when TLS is used without `tls.ca`.
#[derive(Debug, Clone)]
pub(crate) struct Http(Arc<Stack>);

#[derive(Debug)]
struct Stack {
    direct: Maker,
    /// Through the proxy; with the hosts `NO_PROXY` sends direct, when they
    /// can only be told per request (virtual-hosted buckets, AWS's hosts).
    proxied: Option<(Maker, Option<Arc<NoProxy>>)>,
    cache: Mutex<Vec<(TimeoutKey, SharedHttpConnector)>>,
}

/// Connect and read timeouts: what tells connector settings apart.
type TimeoutKey = (Option<Duration>, Option<Duration>);

impl Http {
    pub(crate) fn new(config: &BackendConfig) -> Self {
        // A plain-HTTP endpoint (MinIO on a private network, tests) needs no TLS,
        // unless the proxy itself is https://: skipping it saves loading and
        // parsing the system's root certificates (~3–5 ms of every cold start).
        let endpoint_tls = config.endpoint.as_deref().is_none_or(|e| e.starts_with("https://"));
        let trust = config.tls_ca.as_ref().map(|ca| TrustStore::empty().with_pem_certificate(ca.pem().as_bytes()));
        let direct = Maker { tls: endpoint_tls, proxy: ProxyConfig::disabled(), trust: trust.clone() };
        let proxied = config.effective_proxy().map(|proxy| {
            let via_proxy = ProxyConfig::all(proxy.url.with_credentials()).expect("proxy.rs checked the URL");
            let maker = Maker { tls: endpoint_tls || proxy.url.is_tls(), proxy: via_proxy, trust };
            // One known host: effective_proxy() already applied NO_PROXY to it.
            let routed = !(proxy.no_proxy.is_empty() || config.fixed_host().is_some());
            (maker, routed.then(|| Arc::new(proxy.no_proxy.clone())))
        });
        Http(Arc::new(Stack { direct, proxied, cache: Mutex::default() }))
    }

    /// The connector (and its connection pool) for these settings.
    pub(crate) fn connector(&self, settings: &HttpConnectorSettings) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut cache = self.0.cache.lock().expect("connector cache");
        if let Some((_, connector)) = cache.iter().find(|(k, _)| *k == key) {
            return connector.clone();
        }
        let connector = match &self.0.proxied {
            None => SharedHttpConnector::new(self.0.direct.make(Some(settings))),
            Some((proxied, None)) => SharedHttpConnector::new(proxied.make(Some(settings))),
            Some((proxied, Some(no_proxy))) => SharedHttpConnector::new(RoutedConnector {
                direct: SharedHttpConnector::new(self.0.direct.make(Some(settings))),
                proxied: SharedHttpConnector::new(proxied.make(Some(settings))),
                no_proxy: no_proxy.clone(),
            }),
        };
        cache.push((key, connector.clone()));
        connector
    }
}

impl HttpClient for Http {
    fn http_connector(&self, settings: &HttpConnectorSettings, _components: &RuntimeComponents) -> SharedHttpConnector {
        self.connector(settings)
    }

    /// As the SDK's own clients do, TLS is set up (the system's roots loaded)
    /// when the SDK client is built rather than on the first request.
    fn validate_base_client_config(&self, _components: &RuntimeComponentsBuilder, _cfg: &ConfigBag) -> Result<(), BoxError> {
        let _ = self.0.direct.make(None);
        if let Some((proxied, _)) = &self.0.proxied {
            let _ = proxied.make(None);
        }
        Ok(())
    }
}

/// Builds the SDK's connectors with one proxy setting (the SDK's own default
/// client would read the proxy variables itself, on the first request, with
/// hyper-util's rules) and, with `tls`, rustls trusting `tls.ca` alone when
/// it is given, else the system's roots.
#[derive(Debug)]
struct Maker {
    tls: bool,
    proxy: ProxyConfig,
    trust: Option<TrustStore>,
}

impl Maker {
    fn make(&self, settings: Option<&HttpConnectorSettings>) -> Connector {
        let mut builder = ConnectorBuilder::default();
        builder.set_connector_settings(settings.cloned());
        builder.set_sleep_impl(Some(default_async_sleep().expect("tokio's sleep")));
        builder.set_proxy_config(Some(self.proxy.clone()));
        if !self.tls {
            return builder.build_http();
        }
        let mut builder = builder.tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        if let Some(trust) = &self.trust {
            let context = TlsContext::builder().with_trust_store(trust.clone()).build().expect("a trust store is a valid TLS context");
            builder = builder.tls_context(context);
        }
        builder.build()
    }
}

/// Sends each request through the proxy unless `NO_PROXY` names its host
/// (virtual-hosted buckets and AWS's regional hosts are only known per request).
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
