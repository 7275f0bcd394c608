//! Limits on guessing and on expensive work: password attempts per client IP, failed log-ins
//! per email and client IP and per email, invite-token attempts per client IP.
//!
//! A token bucket per key: `burst` attempts at once, then one more per `period`. Written here
//! rather than with `governor` because a log-in that succeeds must clear its source's failures
//! (a key `governor` cannot remove), and a refused attempt must be detectable before the
//! password is checked (it cannot peek).
//!
//! Memory is bounded: at most `max_keys` keys. Keys whose bucket has refilled are forgotten
//! (they behave as new ones); when the map is full of live keys, new keys share one overflow
//! bucket. So a flood of distinct keys slows only other newcomers, never frees a limited key,
//! and never grows the map.

use crate::error::ApiError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A rate: `burst` attempts at once, then one per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Attempts allowed at once.
    pub burst: u32,
    /// Time to regain one attempt.
    pub period: Duration,
}

impl Rate {
    /// `burst` at once, then one per `period`.
    pub const fn new(burst: u32, period: Duration) -> Self {
        Self { burst, period }
    }
}

/// Default most keys a limiter remembers.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

const OVERFLOW: &str = "\u{0}overflow";

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Attempts left, fractional while refilling.
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct State {
    buckets: HashMap<String, Bucket>,
    /// When refilled keys were last dropped: a full map is swept at most once per
    /// `min(period, 1 s)`, so a flood of new keys costs no full scan each.
    swept: Instant,
}

/// Keyed token buckets with a bounded key count.
#[derive(Debug)]
pub struct Limiter {
    rate: Rate,
    max_keys: usize,
    state: Mutex<State>,
}

impl Limiter {
    /// A limiter at `rate` remembering at most [`DEFAULT_MAX_KEYS`] keys.
    pub fn new(rate: Rate) -> Self {
        Self::with_max_keys(rate, DEFAULT_MAX_KEYS)
    }

    /// A limiter at `rate` remembering at most `max_keys` keys (at least 2: one is the
    /// overflow bucket).
    pub fn with_max_keys(rate: Rate, max_keys: usize) -> Self {
        let rate = Rate { burst: rate.burst.max(1), period: rate.period.max(Duration::from_millis(1)) };
        Self { rate, max_keys: max_keys.max(2), state: Mutex::new(State { buckets: HashMap::new(), swept: Instant::now() }) }
    }

    /// Counts one attempt for `key`.
    ///
    /// Errors: `RATE_LIMITED` with the whole seconds until the next attempt is allowed.
    pub fn attempt(&self, key: &str) -> Result<(), ApiError> {
        self.take(key, true)
    }

    /// Whether `key` may make an attempt now, without counting one.
    ///
    /// Errors: `RATE_LIMITED`, as [`Limiter::attempt`].
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        self.take(key, false)
    }

    /// Forgets `key`: its next attempt starts with a full bucket.
    pub fn reset(&self, key: &str) {
        self.lock().buckets.remove(key);
    }

    /// How many keys are remembered (the overflow bucket included).
    pub fn len(&self) -> usize {
        self.lock().buckets.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent buckets behind.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take(&self, key: &str, count: bool) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut state = self.lock();
        let key = if state.buckets.contains_key(key) || state.buckets.len() + 1 < self.max_keys || self.forget_refilled(&mut state, now) {
            key
        } else {
            OVERFLOW
        };
        let full = Bucket { tokens: f64::from(self.rate.burst), updated: now };
        let bucket = match state.buckets.get(key) {
            Some(bucket) => self.refilled(*bucket, now),
            None if !count => return Ok(()),
            None => full,
        };
        if bucket.tokens < 1.0 {
            let wait = self.rate.period.as_secs_f64() * (1.0 - bucket.tokens);
            return Err(ApiError::RateLimited((wait.ceil() as u64).max(1)));
        }
        if count {
            state.buckets.insert(key.to_string(), Bucket { tokens: bucket.tokens - 1.0, ..bucket });
        }
        Ok(())
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> Bucket {
        let gained = now.saturating_duration_since(bucket.updated).as_secs_f64() / self.rate.period.as_secs_f64();
        Bucket { tokens: (bucket.tokens + gained).min(f64::from(self.rate.burst)), updated: now }
    }

    /// Drops the keys whose bucket is full again; whether there is now room for a new key.
    fn forget_refilled(&self, state: &mut State, now: Instant) -> bool {
        if now.saturating_duration_since(state.swept) >= self.rate.period.min(Duration::from_secs(1)) {
            let burst = f64::from(self.rate.burst);
            state.buckets.retain(|_, bucket| self.refilled(*bucket, now).tokens < burst);
            state.swept = now;
        }
        state.buckets.len() + 1 < self.max_keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOW: Rate = Rate::new(2, Duration::from_secs(3600));

    #[test]
    fn a_key_is_limited_after_its_burst_and_reset_clears_it() {
        let limiter = Limiter::new(SLOW);
        limiter.check("a").unwrap();
        limiter.attempt("a").unwrap();
        limiter.attempt("a").unwrap();
        assert!(matches!(limiter.check("a"), Err(ApiError::RateLimited(s)) if s > 1_000));
        assert!(limiter.attempt("a").is_err());
        limiter.attempt("b").unwrap();
        limiter.reset("a");
        limiter.attempt("a").unwrap();
    }

    #[test]
    fn many_distinct_keys_stay_within_the_bound_and_limited_keys_stay_limited() {
        let limiter = Limiter::with_max_keys(SLOW, 100);
        limiter.attempt("victim").unwrap();
        limiter.attempt("victim").unwrap();
        for i in 0..10_000 {
            let _ = limiter.attempt(&format!("key-{i}"));
            assert!(limiter.len() <= 100, "{} keys after {i}", limiter.len());
        }
        assert!(limiter.attempt("victim").is_err(), "a flood of keys freed a limited key");
        // Newcomers beyond the bound share the overflow bucket, which is used up.
        assert!(limiter.attempt("newcomer").is_err());
    }

    #[test]
    fn refilled_keys_are_forgotten_to_make_room() {
        let limiter = Limiter::with_max_keys(Rate::new(1, Duration::from_millis(1)), 10);
        for i in 0..100 {
            std::thread::sleep(Duration::from_millis(2));
            limiter.attempt(&format!("key-{i}")).unwrap();
        }
        assert!(limiter.len() <= 10);
    }
}
