//! Timestamps as the package reports them: ISO 8601 in UTC with
//! milliseconds, like JavaScript's `toISOString`.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};

/// Now, truncated to whole seconds. SigV4 dates have whole seconds, so
/// `expiresAt` is exactly when a URL stops working, not up to a second later.
pub(crate) fn whole_second_now() -> SystemTime {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_secs(now.as_secs())
}

pub(crate) fn iso_millis(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn iso_from_parts(secs: i64, nanos: u32) -> Option<String> {
    DateTime::<Utc>::from_timestamp(secs, nanos).map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
}
