//! Who is calling: bearer tokens checked by `TokenReview`, remembered for a while.
//!
//! The proxy forwards as the caller by impersonation, so the identity it authenticates is the
//! identity the API server authorises and audits; getting it wrong is the one way the proxy
//! could hand out rights. It therefore never reads a token itself (no JWT verification, no
//! key material): the API server's `TokenReview` says who a token is, with the same
//! authenticators (ServiceAccount, OIDC, webhook) as a direct request.
//!
//! A review per request would put the API server's authenticator on every tenant call, so
//! answers are cached, keyed by the token's SHA-256 (the token itself is never kept):
//! - a valid token for its remaining lifetime (the `exp` of a JWT; [`MAX_POSITIVE_TTL`] at
//!   most, and that long for opaque tokens). The cap is what bounds how long a revoked token
//!   keeps working through the proxy: Tenantry revokes one credential by deleting the Secret
//!   its token is bound to, which only a new review notices. Two minutes is the API server's
//!   own default for its webhook token cache (`--authentication-token-webhook-cache-ttl`);
//! - an invalid token for [`NEGATIVE_TTL`], so a client retrying a bad token in a loop costs
//!   one review every few seconds, not one per request;
//! - at most [`MAX_ENTRIES`] tokens: when full, expired entries go first, then the ones that
//!   expire soonest, so a flood of made-up tokens cannot grow memory without bound.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::Engine as _;

/// The longest a valid token's review is reused.
pub const MAX_POSITIVE_TTL: Duration = Duration::from_secs(120);
/// How long a refused token's review is reused.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Most tokens remembered at once.
pub const MAX_ENTRIES: usize = 10_000;

/// An authenticated identity, as a TokenReview reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// `status.user.username`.
    pub username: String,
    /// `status.user.uid`.
    pub uid: String,
    /// `status.user.groups`.
    pub groups: Vec<String>,
    /// `status.user.extra`.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl From<k8s_openapi::api::authentication::v1::UserInfo> for UserInfo {
    /// The user a TokenReview (or a SelfSubjectReview) reports, absent fields empty.
    fn from(user: k8s_openapi::api::authentication::v1::UserInfo) -> Self {
        Self {
            username: user.username.unwrap_or_default(),
            uid: user.uid.unwrap_or_default(),
            groups: user.groups.unwrap_or_default(),
            extra: user.extra.unwrap_or_default().into_iter().collect(),
        }
    }
}

/// What a review said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    /// The token is valid for this user.
    Authenticated(UserInfo),
    /// The token was refused.
    Refused,
}

/// The SHA-256 of a token: the cache key.
pub type TokenKey = [u8; 32];

/// The cache key of `token`.
pub fn token_key(token: &str) -> TokenKey {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

/// The bearer token of an `Authorization` header value, if that is what it holds.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The `exp` claim of a JWT, read without verification: it only bounds how long a review
/// the API server already made is reused, never whether the token is accepted.
pub fn jwt_expiry(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(exp))
}

/// Reviews already made, with when each stops being reused.
#[derive(Debug, Default)]
pub struct ReviewCache {
    entries: HashMap<TokenKey, (Review, SystemTime)>,
}

impl ReviewCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached review of `key`, if still fresh at `now`.
    pub fn get(&self, key: &TokenKey, now: SystemTime) -> Option<Review> {
        self.entries
            .get(key)
            .filter(|(_, until)| now < *until)
            .map(|(review, _)| review.clone())
    }

    /// Remember `review` of `token` made at `now`, for as long as the module documentation
    /// says.
    pub fn insert(&mut self, token: &str, review: Review, now: SystemTime) {
        let until = match &review {
            Review::Refused => now + NEGATIVE_TTL,
            Review::Authenticated(_) => {
                let cap = now + MAX_POSITIVE_TTL;
                jwt_expiry(token).map_or(cap, |exp| exp.min(cap))
            }
        };
        if until <= now {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|_, (_, u)| *u > now);
        }
        if self.entries.len() >= MAX_ENTRIES {
            let soonest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, u))| *u)
                .map(|(k, _)| *k);
            if let Some(k) = soonest {
                self.entries.remove(&k);
            }
        }
        self.entries.insert(token_key(token), (review, until));
    }

    /// Tokens remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: u64) -> String {
        let enc = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.sig",
            enc(serde_json::json!({"alg": "RS256"})),
            enc(serde_json::json!({"exp": exp, "sub": "x"}))
        )
    }

    fn ann() -> Review {
        Review::Authenticated(UserInfo {
            username: "ann".into(),
            ..UserInfo::default()
        })
    }

    #[test]
    fn only_bearer_authorization_carries_a_token() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic YWxhZGRpbjpvcGVu"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn a_valid_token_is_reused_until_it_expires_or_the_cap() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut cache = ReviewCache::new();
        let short = jwt(1_000_030);
        let long = jwt(2_000_000);
        cache.insert(&short, ann(), now);
        cache.insert(&long, ann(), now);
        cache.insert("opaque", ann(), now);
        let at = |s: u64| now + Duration::from_secs(s);
        assert_eq!(cache.get(&token_key(&short), at(29)), Some(ann()));
        assert_eq!(cache.get(&token_key(&short), at(30)), None);
        assert_eq!(cache.get(&token_key(&long), at(119)), Some(ann()));
        assert_eq!(cache.get(&token_key(&long), at(120)), None);
        assert_eq!(cache.get(&token_key("opaque"), at(120)), None);
        // Already expired: not kept at all.
        cache.insert(&jwt(999_999), ann(), now);
        assert_eq!(cache.get(&token_key(&jwt(999_999)), now), None);
    }

    #[test]
    fn a_refused_token_is_reused_for_a_few_seconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut cache = ReviewCache::new();
        cache.insert("bad", Review::Refused, now);
        assert_eq!(
            cache.get(&token_key("bad"), now + Duration::from_secs(4)),
            Some(Review::Refused)
        );
        assert_eq!(cache.get(&token_key("bad"), now + NEGATIVE_TTL), None);
    }

    #[test]
    fn the_cache_never_grows_past_its_bound() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut cache = ReviewCache::new();
        cache.insert("first", Review::Refused, now);
        for i in 0..(MAX_ENTRIES + 50) {
            cache.insert(&format!("t{i}"), ann(), now);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        // The newest is kept; the one expiring soonest (a refusal) went first.
        let newest = format!("t{}", MAX_ENTRIES + 49);
        assert!(cache.get(&token_key(&newest), now).is_some());
        assert!(cache.get(&token_key("first"), now).is_none());
    }
}
