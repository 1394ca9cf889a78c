//! Builds the aws-sdk-s3 client from a [`BackendConfig`], with the choices
//! that keep every S3-compatible service working.

use std::time::Duration;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation, StalledStreamProtectionConfig,
};
use aws_sdk_s3::Client;
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use aws_smithy_types::timeout::TimeoutConfig;

use crate::config::BackendConfig;
use crate::retry::sdk_retry_config;

/// Builds the client synchronously: no network and no file reads happen
/// until the first request, so a constructor can call this.
pub(crate) fn build_client(config: &BackendConfig, credentials: SharedCredentialsProvider) -> Client {
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
    builder = builder.credentials_provider(credentials);
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint.clone());
        // A plain-HTTP endpoint (MinIO on a private network, tests) needs no
        // TLS: skipping it saves loading and parsing the system's root
        // certificates when the client is built (~3–5 ms of every cold start).
        if endpoint.starts_with("http://") {
            builder = builder.http_client(aws_smithy_http_client::Builder::new().build_http());
        }
    }
    Client::from_conf(builder.build())
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
