//! Sealed, stateless `next` tokens (§3.4 `next`, §3.5).
//!
//! A `next` token is the paging position (the collection sequence number of the last record
//! served) authenticated with HMAC-SHA256 over everything the position is only meaningful for:
//! the account it was issued to, the API root, the collection, the endpoint (with its object id),
//! and a canonical form of the query's filters (`Filters::canonical` in the query module). The server
//! keeps no paging state at all, so tokens survive restarts and work on every server process that
//! shares the store (the key comes from `Store::secret("next-token")`).
//!
//! A tampered token, or a token presented with other filters or by another account, fails the MAC
//! check and the request gets 400. The page size (`limit`) is deliberately not sealed: the
//! position means the same whatever the page size, so a client may change it between pages.
//!
//! Wire form: base64url without padding of `version (1 byte) ‖ position (i64, big-endian) ‖
//! HMAC-SHA256 truncated to 128 bits` (34 characters).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

const FORMAT_VERSION: u8 = 1;
const MAC_LEN: usize = 16;
const TOKEN_LEN: usize = 1 + 8 + MAC_LEN;
/// Domain separation: this key seals paging positions and nothing else.
const DOMAIN: &[u8] = b"kizuna taxii next-token v1";

/// What a token is bound to, besides its position.
#[derive(Debug, Clone, Copy)]
pub struct TokenScope<'a> {
    /// Name of the account the token was issued to.
    pub account: &'a str,
    /// API root name.
    pub api_root: &'a str,
    /// Collection id (never the alias, so both spellings of the URL share tokens).
    pub collection: &'a str,
    /// Which endpoint: `objects`, `manifest`, `object:<id>`, `versions:<id>`.
    pub endpoint: &'a str,
    /// Canonical form of the filters.
    pub filters: &'a str,
}

/// Seals and opens `next` tokens with a server-wide key.
pub struct TokenSealer {
    key: [u8; 32],
}

impl fmt::Debug for TokenSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSealer { key: <redacted> }")
    }
}

impl TokenSealer {
    /// A sealer with this key (from `Store::secret("next-token")`).
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, scope: &TokenScope<'_>, position: i64) -> [u8; 32] {
        // Fields are length-prefixed, so that no two different scopes encode to the same input.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            // HMAC accepts keys of any length; this arm cannot be taken.
            Err(_) => return [0; 32],
        };
        mac.update(DOMAIN);
        for field in [
            scope.account,
            scope.api_root,
            scope.collection,
            scope.endpoint,
            scope.filters,
        ] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        mac.update(&position.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A token for resuming after `position` under `scope`.
    pub fn seal(&self, scope: &TokenScope<'_>, position: i64) -> String {
        let mut raw = [0u8; TOKEN_LEN];
        raw[0] = FORMAT_VERSION;
        raw[1..9].copy_from_slice(&position.to_be_bytes());
        raw[9..].copy_from_slice(&self.mac(scope, position)[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The position sealed in `token`, if it was issued by this server for exactly `scope`;
    /// otherwise 400.
    pub fn open(&self, scope: &TokenScope<'_>, token: &str) -> Result<i64, ApiError> {
        let invalid = || {
            ApiError::bad_request(
                "the next token is invalid, or was issued for another query, collection or account",
            )
        };
        if token.len() > 64 {
            return Err(invalid());
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token.as_bytes())
            .map_err(|_| invalid())?;
        if raw.len() != TOKEN_LEN || raw[0] != FORMAT_VERSION {
            return Err(invalid());
        }
        let mut pos = [0u8; 8];
        pos.copy_from_slice(&raw[1..9]);
        let position = i64::from_be_bytes(pos);
        let expected = self.mac(scope, position);
        if bool::from(expected[..MAC_LEN].ct_eq(&raw[9..])) {
            Ok(position)
        } else {
            Err(invalid())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope<'a>(account: &'a str, filters: &'a str) -> TokenScope<'a> {
        TokenScope {
            account,
            api_root: "api",
            collection: "c",
            endpoint: "objects",
            filters,
        }
    }

    #[test]
    fn round_trip_and_binding() {
        let sealer = TokenSealer::new([7; 32]);
        let t = sealer.seal(&scope("alice", "f"), 42);
        assert_eq!(t.len(), 34);
        assert_eq!(sealer.open(&scope("alice", "f"), &t).unwrap(), 42);
        assert!(sealer.open(&scope("bob", "f"), &t).is_err());
        assert!(sealer.open(&scope("alice", "g"), &t).is_err());
        assert!(
            TokenSealer::new([8; 32])
                .open(&scope("alice", "f"), &t)
                .is_err()
        );
        let mut tampered = t.into_bytes();
        tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(sealer.open(&scope("alice", "f"), &tampered).is_err());
        assert!(sealer.open(&scope("alice", "f"), "%%%").is_err());
        assert!(sealer.open(&scope("alice", "f"), "").is_err());
    }

    #[test]
    fn ambiguous_concatenations_differ() {
        let sealer = TokenSealer::new([1; 32]);
        let a = TokenScope {
            account: "ab",
            api_root: "c",
            ..scope("", "")
        };
        let b = TokenScope {
            account: "a",
            api_root: "bc",
            ..scope("", "")
        };
        assert_ne!(sealer.seal(&a, 1), sealer.seal(&b, 1));
    }
}
