//! Bearer tokens → who is calling. The roster stores only SHA-256 hex digests of tokens; a
//! presented token is hashed and looked up by its digest.
//!
//! Looking a digest up in a hash map leaks nothing useful through timing: an attacker controls
//! the token, not its digest, so timing differences reveal nothing about a valid token.

use dispatch_core::roster::TokenTable;
use sha2::{Digest, Sha256};
use std::sync::RwLock;

/// An authenticated caller: the role and the roster id the token is bound to (the roster's
/// own type; `wire::Role::from` names its role on the wire).
pub use dispatch_core::roster::Principal;

/// The SHA-256 hex digest (lowercase) of a token, as the roster stores it.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The engine roster's token table, as connection attempts see it: the engine task hands
/// over the roster's table whenever a command changed it ([`TokenIndex::follow`]); nothing
/// here is kept by hand, so it cannot drift from the roster.
#[derive(Debug)]
pub struct TokenIndex {
    current: RwLock<TokenTable>,
}

impl TokenIndex {
    pub fn new(table: TokenTable) -> TokenIndex {
        TokenIndex {
            current: RwLock::new(table),
        }
    }

    /// Who a presented token belongs to, if anyone.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let digest = token_digest(token);
        self.read().get(&digest).cloned()
    }

    /// Follows the roster: takes its table if it is not the one held (a pointer compare, so
    /// cheap enough to call after every command).
    pub fn follow(&self, table: &TokenTable) {
        if !std::sync::Arc::ptr_eq(&self.read(), table) {
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = table.clone();
        }
    }

    // A poisoned lock only means another thread panicked while swapping a pointer; the table
    // is still a valid table, so keep serving rather than refuse every login.
    fn read(&self) -> TokenTable {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The token of a request: `Authorization: Bearer <token>`, else `access_token=<token>` in the
/// query string (browsers cannot set headers on a WebSocket).
pub fn bearer_token(headers: &axum::http::HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "access_token").then(|| percent_decode(v))
    })
}

/// Minimal `application/x-www-form-urlencoded` value decoding (tokens are usually plain).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    #[test]
    fn digest_is_sha256_hex() {
        // The published SHA-256 of "abc".
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tokens_come_from_the_header_or_the_query() {
        let mut h = HeaderMap::new();
        assert_eq!(
            bearer_token(&h, Some("a=1&access_token=t%2Bk")),
            Some("t+k".into())
        );
        assert_eq!(bearer_token(&h, Some("a=1")), None);
        h.insert("authorization", "Bearer secret".parse().unwrap());
        assert_eq!(
            bearer_token(&h, Some("access_token=other")),
            Some("secret".into())
        );
        h.insert("authorization", "Basic xyz".parse().unwrap());
        assert_eq!(bearer_token(&h, None), None);
    }
}
