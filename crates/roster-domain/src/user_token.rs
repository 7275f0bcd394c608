//! One-time links of a user's own email (issue 12, "Email ownership"): email verification and
//! password reset.
//!
//! A token is 48 bytes, base64url without padding (64 characters): `user id (16) ‖ secret (32)`.
//! It names its user so that the command loads the user's stream directly. Its secret is
//! derived like an invite token's ([`crate::token`]): `HMAC-SHA256(key, purpose ‖ user id ‖
//! nonce)`, the nonce recorded in the request's event, so the mailer rebuilds the link after
//! commit while the database holds only the nonce and the token's SHA-256 digest. The purpose
//! is part of the HMAC, so a verification link can never reset a password.

use crate::token::{SendNonce, TokenDigest, TokenKey};
use crate::{DomainError, UserId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What a user token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Proves the email on sign-up (`verifyEmail`).
    Verify,
    /// Sets a new password (`resetPassword`).
    Reset,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Verify => b"roster verify-email v1",
            Purpose::Reset => b"roster reset-password v1",
        }
    }
}

/// A decoded user token. Never persisted; only its [`TokenDigest`] is.
#[derive(Clone, PartialEq, Eq)]
pub struct UserToken {
    /// The user the token was issued to.
    pub user_id: UserId,
    secret: [u8; 32],
}

impl std::fmt::Debug for UserToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserToken").field("user_id", &self.user_id).finish_non_exhaustive()
    }
}

impl UserToken {
    /// The token of one request: its secret is `HMAC-SHA256(key, purpose ‖ user id ‖ nonce)`.
    pub fn derive(key: &TokenKey, purpose: Purpose, user_id: UserId, nonce: &SendNonce) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.bytes()).expect("HMAC takes any key length");
        mac.update(purpose.label());
        mac.update(user_id.uuid().as_bytes());
        mac.update(nonce.bytes());
        Self { user_id, secret: mac.finalize().into_bytes().into() }
    }

    fn bytes(&self) -> [u8; 48] {
        let mut bytes = [0u8; 48];
        bytes[..16].copy_from_slice(self.user_id.uuid().as_bytes());
        bytes[16..].copy_from_slice(&self.secret);
        bytes
    }

    /// The token as it appears in the link (64 base64url characters).
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.bytes())
    }

    /// Decodes a token from a link.
    ///
    /// Errors: [`DomainError::InvalidToken`] when `raw` is not 48 base64url-encoded bytes.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| DomainError::InvalidToken)?;
        let bytes: [u8; 48] = bytes.try_into().map_err(|_| DomainError::InvalidToken)?;
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&bytes[16..]);
        Ok(Self { user_id: Uuid::from_slice(&bytes[..16]).expect("16 bytes").into(), secret })
    }

    /// The SHA-256 digest that events hold instead of the token.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest::from_stored(hex::encode(Sha256::digest(self.bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_depend_on_purpose_key_and_nonce() {
        let user: UserId = Uuid::new_v4().into();
        let (k1, k2) = (TokenKey::new([1; 32]), TokenKey::new([2; 32]));
        let (n1, n2) = (SendNonce::new([3; 16]), SendNonce::new([4; 16]));
        let t = UserToken::derive(&k1, Purpose::Verify, user, &n1);
        let encoded = t.encode();
        assert_eq!(encoded.len(), 64);
        assert_eq!(UserToken::parse(&encoded).unwrap(), t);
        assert_eq!(t, UserToken::derive(&k1, Purpose::Verify, user, &n1));
        for other in [
            UserToken::derive(&k2, Purpose::Verify, user, &n1),
            UserToken::derive(&k1, Purpose::Reset, user, &n1),
            UserToken::derive(&k1, Purpose::Verify, user, &n2),
        ] {
            assert_ne!(other, t);
            assert!(!other.digest().verifies(&t.digest()));
        }
        assert!(!encoded.contains(t.digest().as_str()));
    }

    #[test]
    fn malformed_tokens_are_invalid() {
        for bad in ["", "abc", "!!!!", &"A".repeat(86)] {
            assert_eq!(UserToken::parse(bad).unwrap_err(), DomainError::InvalidToken);
        }
    }
}
