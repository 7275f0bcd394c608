//! Invite tokens (rule "Token" of `domain-rules.md`).
//!
//! A token is 64 bytes, base64url without padding (86 characters):
//! `account id (16) ‖ invitation id (16) ‖ secret (32)`. It names its account and invitation so
//! that accepting loads the account aggregate directly, without a read-model look-up. Only the
//! SHA-256 digest of the whole token is ever stored.
//!
//! The secret is derived ([`InviteToken::derive`]): HMAC-SHA256 under the server's token key
//! (from configuration, never in the database) of the ids and a per-send nonce (16 random
//! bytes, recorded in the send's event). So the mailer can rebuild the link after commit, even
//! after a crash, while the database and the event log hold nothing from which the token can be
//! read: without the key, the nonce is noise (issue 12, "no token at rest").

use crate::{AccountId, DomainError, InvitationId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// A decoded invite token. Never persisted; see [`TokenDigest`].
#[derive(Clone, PartialEq, Eq)]
pub struct InviteToken {
    /// The account the invitation belongs to.
    pub account_id: AccountId,
    /// The invitation the token was issued for.
    pub invitation_id: InvitationId,
    secret: [u8; 32],
}

impl std::fmt::Debug for InviteToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InviteToken")
            .field("account_id", &self.account_id)
            .field("invitation_id", &self.invitation_id)
            .finish_non_exhaustive()
    }
}

impl InviteToken {
    /// A token for `invitation_id` of `account_id` with a 256-bit `secret` from a CSPRNG.
    pub fn new(account_id: AccountId, invitation_id: InvitationId, secret: [u8; 32]) -> Self {
        Self { account_id, invitation_id, secret }
    }

    /// The token of one send of `invitation_id`: its secret is
    /// `HMAC-SHA256(key, account id ‖ invitation id ‖ nonce)`. The same key and nonce give the
    /// same token; a different nonce (each send draws one) gives an unrelated one.
    pub fn derive(key: &TokenKey, account_id: AccountId, invitation_id: InvitationId, nonce: &SendNonce) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes any key length");
        mac.update(account_id.uuid().as_bytes());
        mac.update(invitation_id.uuid().as_bytes());
        mac.update(&nonce.0);
        Self::new(account_id, invitation_id, mac.finalize().into_bytes().into())
    }

    fn bytes(&self) -> [u8; 64] {
        let mut bytes = [0u8; 64];
        bytes[..16].copy_from_slice(self.account_id.uuid().as_bytes());
        bytes[16..32].copy_from_slice(self.invitation_id.uuid().as_bytes());
        bytes[32..].copy_from_slice(&self.secret);
        bytes
    }

    /// The token as it appears in the invite link (86 base64url characters).
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.bytes())
    }

    /// Decodes a token from a link.
    ///
    /// Errors: [`DomainError::InvalidToken`] when `raw` is not 64 base64url-encoded bytes.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(raw.trim())
            .map_err(|_| DomainError::InvalidToken)?;
        let bytes: [u8; 64] = bytes.try_into().map_err(|_| DomainError::InvalidToken)?;
        let id = |range: std::ops::Range<usize>| Uuid::from_slice(&bytes[range]).expect("16 bytes");
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&bytes[32..]);
        Ok(Self { account_id: id(0..16).into(), invitation_id: id(16..32).into(), secret })
    }

    /// The SHA-256 digest that events and tables hold instead of the token.
    pub fn digest(&self) -> TokenDigest {
        let hash = Sha256::digest(self.bytes());
        TokenDigest(hash.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// The server's key for deriving invite tokens: 32 bytes from configuration (derived from the
/// session secret, see `roster-api`'s config). Never stored, never logged.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// A key from 32 secret bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// The per-send nonce of an invite token: 16 random bytes (drawn by the caller), serialised as
/// 32 lower-case hex characters in the send's event. Not secret on its own: see
/// [`InviteToken::derive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct SendNonce([u8; 16]);

impl SendNonce {
    /// A nonce from 16 random bytes.
    pub fn new(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl From<SendNonce> for String {
    fn from(n: SendNonce) -> String {
        hex::encode(n.0)
    }
}

impl TryFrom<String> for SendNonce {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bytes = hex::decode(&s).map_err(|e| format!("nonce: {e}"))?;
        Ok(Self(bytes.try_into().map_err(|_| "nonce: not 16 bytes".to_string())?))
    }
}

/// The SHA-256 digest of an invite token, as 64 lower-case hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenDigest(String);

impl TokenDigest {
    /// Compares two digests in constant time, so timing reveals nothing of a stored digest.
    pub fn verifies(&self, presented: &TokenDigest) -> bool {
        self.0.as_bytes().ct_eq(presented.0.as_bytes()).into()
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A digest as a read model stored it (from [`TokenDigest::as_str`]).
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }
}

/// The one invite-token check (rule "Token"), shared by accepting (on the aggregate, through
/// [`crate::Account::invitation_for_token`]) and previewing (on the read model): the presented
/// token's digest must equal the stored digest of the invitation it names, compared in
/// constant time.
///
/// Errors: [`DomainError::InvalidToken`] when nothing is stored for the invitation (unknown, so
/// a token reveals no more than a wrong one) or the digests differ (e.g. rotated by a resend).
pub fn verify(stored: Option<&TokenDigest>, presented: &TokenDigest) -> Result<(), DomainError> {
    match stored {
        Some(stored) if stored.verifies(presented) => Ok(()),
        _ => Err(DomainError::InvalidToken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_and_names_its_invitation() {
        let t = InviteToken::new(Uuid::new_v4().into(), Uuid::new_v4().into(), [7; 32]);
        let encoded = t.encode();
        assert_eq!(encoded.len(), 86);
        let back = InviteToken::parse(&encoded).unwrap();
        assert_eq!(back, t);
        assert!(t.digest().verifies(&back.digest()));
        assert!(!encoded.contains(t.digest().as_str()));
    }

    #[test]
    fn malformed_tokens_are_invalid() {
        for bad in ["", "abc", "!!!!", &"A".repeat(87)] {
            assert_eq!(InviteToken::parse(bad).unwrap_err(), DomainError::InvalidToken);
        }
    }

    #[test]
    fn derived_tokens_depend_on_key_and_nonce() {
        let (a, i) = (Uuid::new_v4().into(), Uuid::new_v4().into());
        let (k1, k2) = (TokenKey::new([1; 32]), TokenKey::new([2; 32]));
        let (n1, n2) = (SendNonce::new([3; 16]), SendNonce::new([4; 16]));
        let t = InviteToken::derive(&k1, a, i, &n1);
        assert_eq!(t, InviteToken::derive(&k1, a, i, &n1));
        assert_ne!(t, InviteToken::derive(&k2, a, i, &n1));
        assert_ne!(t, InviteToken::derive(&k1, a, i, &n2));
        let json = serde_json::to_string(&n1).unwrap();
        assert_eq!(json, format!("\"{}\"", "03".repeat(16)));
        assert_eq!(serde_json::from_str::<SendNonce>(&json).unwrap(), n1);
        assert!(serde_json::from_str::<SendNonce>("\"zz\"").is_err());
    }

    #[test]
    fn a_different_secret_does_not_verify() {
        let (a, i) = (Uuid::new_v4().into(), Uuid::new_v4().into());
        let d1 = InviteToken::new(a, i, [1; 32]).digest();
        let d2 = InviteToken::new(a, i, [2; 32]).digest();
        assert!(!d1.verifies(&d2));
    }
}
