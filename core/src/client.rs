//! Builds the aws-sdk-s3 client from a [`BackendConfig`], with the choices
//! that keep every S3-compatible service working.

use std::time::Duration;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::Client;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::config::BackendConfig;

/// Builds the client synchronously: no network and no file reads happen
/// until the first request, so a constructor can call this.
pub fn build_client(config: &BackendConfig) -> Client {
    let region = Region::new(config.region.clone());
    let mut builder = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region.clone())
        .force_path_style(config.force_path_style)
        // MinIO, R2, B2 and Garage reject some of the newer default CRC
        // checksums; send and check them only where an operation demands it.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        // A Node source that pauses is not a stalled network: keep the guard
        // for downloads only.
        .stalled_stream_protection(StalledStreamProtectionConfig::enabled().upload_enabled(false).build())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(TimeoutConfig::builder().connect_timeout(Duration::from_secs(5)).build());
    builder = match &config.credentials {
        Some(c) => builder.credentials_provider(Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.expose().to_owned(),
            c.session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "storage-s3-native",
        )),
        None => builder.credentials_provider(LazyDefaultChain { region, chain: Default::default() }),
    };
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint.clone());
    }
    Client::from_conf(builder.build())
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
            let chain = self
                .chain
                .get_or_init(|| DefaultCredentialsChain::builder().region(self.region.clone()).build())
                .await;
            chain.provide_credentials().await
        })
    }
}
