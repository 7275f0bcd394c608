//! Limits on guessing: log-in attempts per email and invite-token attempts per client IP.
//! Uses `governor`'s GCRA keyed limiter.

use crate::error::ApiError;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// Allows `burst` attempts per key at once, then one more per `period`.
pub struct Limiter {
    inner: DefaultKeyedRateLimiter<String>,
}

impl Limiter {
    /// A limiter of `burst` attempts, refilled one per `period`.
    pub fn new(burst: u32, period: Duration) -> Self {
        let quota = Quota::with_period(period)
            .expect("non-zero period")
            .allow_burst(NonZeroU32::new(burst.max(1)).expect("non-zero"));
        Self { inner: RateLimiter::keyed(quota) }
    }

    /// Counts one attempt for `key`.
    ///
    /// Errors: `RATE_LIMITED` with the whole seconds until the next attempt is allowed.
    pub fn attempt(&self, key: &str) -> Result<(), ApiError> {
        self.inner.check_key(&key.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited(wait.as_secs().max(1))
        })
    }
}
