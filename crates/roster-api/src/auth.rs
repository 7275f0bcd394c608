//! Sessions (HS256 JWTs signed with `ROSTER_JWT_SECRET`), passwords (argon2id PHC strings) and
//! who is calling.

use crate::error::{ApiError, ApiResult};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::Argon2;
use jsonwebtoken::{decode, encode, DecodingKey, EncodingKey, Header, Validation};
use roster_domain::{Email, UserId};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// Who is calling, from the `Authorization: Bearer` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No token, or one that does not verify.
    Anonymous,
    /// A signed-in user.
    User {
        /// The user's id (the token's `sub`).
        id: UserId,
        /// The user's normalised email.
        email: Email,
        /// When the session was issued, ms since the Unix epoch (the token's `iat_ms`, else
        /// `iat`): a password reset after it ends the session.
        issued_ms: i64,
    },
    /// The operator token: may read every account's events, nothing else.
    Operator,
}

impl Caller {
    /// The signed-in user, or `UNAUTHENTICATED`.
    pub fn user(&self) -> ApiResult<(UserId, &Email)> {
        match self {
            Caller::User { id, email, .. } => Ok((*id, email)),
            _ => Err(ApiError::Unauthenticated("sign in first")),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: UserId,
    email: String,
    iat: i64,
    exp: i64,
    /// When issued, in Unix milliseconds (a reset in the same second as a log-in must tell
    /// them apart); absent in tokens issued before it existed.
    #[serde(default)]
    iat_ms: Option<i64>,
}

/// Issues a session token for `user_id` valid for `ttl`.
pub fn issue_session(secret: &str, user_id: UserId, email: &Email, ttl: Duration) -> ApiResult<String> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let now = now_ms.div_euclid(1000);
    let claims = Claims { sub: user_id, email: email.to_string(), iat: now, exp: now + ttl.as_secs() as i64, iat_ms: Some(now_ms) };
    encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes()))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Identifies the caller from a bearer token: the operator token, a valid session (with when
/// it was issued), or nobody. The token alone does not tell whether a password reset has since ended the session:
/// callers go through `App::identify`, which checks that too.
pub fn identify_session(secret: &str, operator_token: Option<&str>, bearer: Option<&str>) -> Caller {
    let Some(token) = bearer.map(str::trim).filter(|t| !t.is_empty()) else { return Caller::Anonymous };
    if let Some(op) = operator_token {
        if bool::from(op.as_bytes().ct_eq(token.as_bytes())) {
            return Caller::Operator;
        }
    }
    let validation = Validation::default();
    match decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation) {
        Ok(data) => match Email::parse(&data.claims.email) {
            Ok(email) => {
                let issued = data.claims.iat_ms.unwrap_or(data.claims.iat.saturating_mul(1000));
                Caller::User { id: data.claims.sub, email, issued_ms: issued }
            }
            Err(_) => Caller::Anonymous,
        },
        Err(_) => Caller::Anonymous,
    }
}

/// Runs argon2id off the async runtime, at most `concurrency` jobs at once: each takes 19 MiB
/// and a core's worth of time, so unbounded they would exhaust memory and the blocking pool.
/// Jobs beyond that wait in a bounded queue; beyond the queue they are refused.
pub struct PasswordHasher {
    permits: Arc<tokio::sync::Semaphore>,
    /// Jobs waiting for a permit, and the most that may.
    waiting: AtomicUsize,
    max_waiting: usize,
    /// Jobs hashing now, and the most ever seen at once (for tests and operators).
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl PasswordHasher {
    /// A hasher running at most `concurrency` jobs (at least 1), with up to 16 waiting per job.
    pub fn new(concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(concurrency)),
            waiting: AtomicUsize::new(0),
            max_waiting: 16 * concurrency,
            running: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The most hashing jobs that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Hashes `password` with argon2id and a random salt.
    ///
    /// Errors: `RATE_LIMITED` when the queue is full; `INTERNAL`.
    pub async fn hash(&self, password: String) -> ApiResult<String> {
        self.run(move || {
            let mut salt = [0u8; 16];
            getrandom::fill(&mut salt).map_err(|e| ApiError::Internal(e.to_string()))?;
            let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::Internal(e.to_string()))?;
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| ApiError::Internal(e.to_string()))
        })
        .await?
    }

    /// Verifies `password` against a stored PHC hash. With no stored hash (unknown email) a
    /// dummy hash is checked, so both cases take the same time.
    ///
    /// Errors: `RATE_LIMITED` when the queue is full; `INTERNAL`.
    pub async fn verify(&self, password: String, stored: Option<String>) -> ApiResult<bool> {
        const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$R5XE+vKjhJ3L+0S0cP9nFm5c8Bz1nRqhTgc5U1xmP2Y";
        self.run(move || {
            let known = stored.is_some();
            let hash = stored.unwrap_or_else(|| DUMMY.to_string());
            let ok = PasswordHash::new(&hash)
                .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
                .unwrap_or(false);
            ok && known
        })
        .await
    }

    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
        let permit = {
            // Counted down however the wait ends, the request's cancellation included.
            let _waiting = Waiting::enter(&self.waiting, self.max_waiting).ok_or(ApiError::RateLimited(1))?;
            self.permits.clone().acquire_owned().await.map_err(|e| ApiError::Internal(e.to_string()))?
        };
        let (running, peak) = (self.running.clone(), self.peak.clone());
        // The permit moves into the job: a cancelled request does not free it while the hash
        // still runs.
        tokio::task::spawn_blocking(move || {
            let now = running.fetch_add(1, Ordering::AcqRel) + 1;
            peak.fetch_max(now, Ordering::AcqRel);
            let result = job();
            running.fetch_sub(1, Ordering::AcqRel);
            drop(permit);
            result
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
    }
}

/// One place in the hashing queue, given back on drop.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize, max: usize) -> Option<Self> {
        let taken = Waiting(count);
        (count.fetch_add(1, Ordering::AcqRel) < max).then_some(taken)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A fresh 256-bit secret from the OS CSPRNG, for invite tokens.
pub fn random_secret() -> ApiResult<[u8; 32]> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(secret)
}
