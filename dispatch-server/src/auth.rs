//! Bearer tokens → who is calling. The roster stores only SHA-256 hex digests of tokens; a
//! presented token is hashed and looked up by its digest.
//!
//! Looking a digest up in a hash map leaks nothing useful through timing: an attacker controls
//! the token, not its digest, so timing differences reveal nothing about a valid token.

use crate::wire::Role;
use dispatch_core::ids::{DeviceId, OperatorId, ResponderId};
use dispatch_core::roster::RosterFile;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;

/// An authenticated caller: the role and the roster id the token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    Operator(OperatorId),
    /// A responder's phone: it acts only for this responder id.
    Responder(ResponderId),
    Device(DeviceId),
}

impl Principal {
    pub fn role(&self) -> Role {
        match self {
            Principal::Operator(_) => Role::Operator,
            Principal::Responder(_) => Role::Responder,
            Principal::Device(_) => Role::Device,
        }
    }

    /// The roster id as text.
    pub fn id(&self) -> &str {
        match self {
            Principal::Operator(id) => id.as_str(),
            Principal::Responder(id) => id.as_str(),
            Principal::Device(id) => id.as_str(),
        }
    }
}

/// The SHA-256 hex digest (lowercase) of a token, as the roster stores it.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Token digest → principal. Written by the engine task when the roster changes, read by
/// every connection attempt.
#[derive(Debug, Default)]
pub struct TokenIndex {
    by_digest: RwLock<HashMap<String, Principal>>,
}

impl TokenIndex {
    /// The index of every token in a roster file.
    pub fn from_roster(roster: &RosterFile) -> TokenIndex {
        let index = TokenIndex::default();
        {
            let mut map = index.write();
            for o in &roster.operators {
                map.insert(
                    o.token_sha256.to_ascii_lowercase(),
                    Principal::Operator(o.id.clone()),
                );
            }
            for d in &roster.devices {
                map.insert(
                    d.token_sha256.to_ascii_lowercase(),
                    Principal::Device(d.id.clone()),
                );
            }
            for r in &roster.responders {
                if let Some(t) = &r.token_sha256 {
                    map.insert(t.to_ascii_lowercase(), Principal::Responder(r.id.clone()));
                }
            }
        }
        index
    }

    /// Who a presented token belongs to, if anyone.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let digest = token_digest(token);
        self.read().get(&digest).cloned()
    }

    /// Binds a responder's (new) token digest, dropping any previous one of theirs.
    pub fn set_responder(&self, id: &ResponderId, digest: Option<&str>) {
        let mut map = self.write();
        map.retain(|_, p| !matches!(p, Principal::Responder(r) if r == id));
        if let Some(d) = digest {
            map.insert(d.to_ascii_lowercase(), Principal::Responder(id.clone()));
        }
    }

    // A poisoned lock only means another thread panicked mid-update of a plain map; the map is
    // still a valid map, so keep serving rather than refuse every login.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Principal>> {
        self.by_digest.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Principal>> {
        self.by_digest.write().unwrap_or_else(|e| e.into_inner())
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
