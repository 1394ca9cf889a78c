//! Backoff for the retries the engine makes itself (a stalled body); the SDK
//! retries everything else with the same settings.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::config::RetryConfig;

/// Exponential backoff with full jitter: a random delay up to
/// `base × 2^(attempt-1)`, capped at `max`.
pub(crate) fn backoff(retry: &RetryConfig, attempt: u32) -> Duration {
    let ceiling = retry.base_delay_ms.saturating_mul(1 << attempt.saturating_sub(1).min(20)).min(retry.max_delay_ms);
    // RandomState is seeded randomly per instance: enough for jitter.
    let random = RandomState::new().build_hasher().finish();
    Duration::from_millis(random % (ceiling + 1))
}

/// The SDK's retry settings from ours.
pub(crate) fn sdk_retry_config(retry: &RetryConfig) -> aws_smithy_types::retry::RetryConfig {
    aws_smithy_types::retry::RetryConfig::standard()
        .with_max_attempts(retry.max_attempts)
        .with_initial_backoff(Duration::from_millis(retry.base_delay_ms))
        .with_max_backoff(Duration::from_millis(retry.max_delay_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        let r = RetryConfig { max_attempts: 5, base_delay_ms: 100, max_delay_ms: 300 };
        for attempt in 1..10 {
            let d = backoff(&r, attempt).as_millis() as u64;
            assert!(d <= (100u64 << (attempt - 1)).min(300), "{attempt}: {d}");
        }
    }
}
