//! Bearer tokens → who is calling. The roster stores only SHA-256 hex digests of tokens; a
//! presented token is hashed and looked up by its digest.
//!
//! Looking a digest up in a hash map leaks nothing useful through timing: an attacker controls
//! the token, not its digest, so timing differences reveal nothing about a valid token.

use dispatch_core::ids::{GridId, OperatorId};
use dispatch_core::roster::{GridRecord, Rights};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::RwLock;
use tokio::sync::watch;

/// An authenticated caller: the role and the roster id the token is bound to (the roster's
/// own type; `wire::Role::from` names its role on the wire).
pub use dispatch_core::roster::Principal;

/// The SHA-256 hex digest (lowercase) of a token, as the roster stores it.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A table of the engine's roster as other threads see it: the engine task hands over the
/// roster's own copy-on-write table whenever a command changed it ([`Followed::follow`]), so
/// nothing here is kept by hand and it cannot drift from the roster.
#[derive(Debug)]
pub struct Followed<T> {
    current: RwLock<Arc<T>>,
    /// Bumped whenever the table changes, so open sessions can check what they rely on.
    changes: watch::Sender<u64>,
}

impl<T> Followed<T> {
    pub fn new(table: Arc<T>) -> Followed<T> {
        Followed {
            current: RwLock::new(table),
            changes: watch::channel(0).0,
        }
    }

    /// The newest table.
    pub fn get(&self) -> Arc<T> {
        // A poisoned lock only means another thread panicked while swapping a pointer; the
        // table is still a valid table, so keep serving rather than refuse every login.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Wakes when the table changes (for a session that relies on it).
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Follows the roster: takes its table if it is not the one held (a pointer compare, so
    /// cheap enough to call after every command).
    pub fn follow(&self, table: &Arc<T>) {
        if !Arc::ptr_eq(&self.get(), table) {
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = table.clone();
            self.changes.send_modify(|n| *n += 1);
        }
    }
}

/// The roster's grids, for console filters (`unknown_grid`).
pub type GridIndex = Followed<BTreeMap<GridId, GridRecord>>;

/// The roster's token table, as connection attempts and open sessions see it.
pub type TokenIndex = Followed<HashMap<String, Principal>>;

/// Each operator's rights (their roster `roles`), as requests and open sessions see them.
pub type RightsIndex = Followed<BTreeMap<OperatorId, Rights>>;

impl RightsIndex {
    /// An operator's rights now (none for an id the roster no longer holds).
    pub fn of(&self, id: &OperatorId) -> Rights {
        self.get().get(id).copied().unwrap_or_default()
    }
}

/// The roster's tables the server reads outside the engine task, followed after every
/// accepted command.
#[derive(Debug, Clone)]
pub struct RosterViews {
    pub tokens: Arc<TokenIndex>,
    pub grids: Arc<GridIndex>,
    pub rights: Arc<RightsIndex>,
}

/// What an open session keeps of the token it was opened with: its digest, and a receiver
/// that wakes when the roster's tokens change (a token issued anew, a person retired).
#[derive(Debug, Clone)]
pub struct Credential {
    digest: String,
    changes: watch::Receiver<u64>,
}

impl Credential {
    /// Resolves when the token table changed since this was last called (never, once the
    /// index is gone).
    pub async fn changed(&mut self) {
        if self.changes.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl TokenIndex {
    /// Who a presented token belongs to, if anyone.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        self.get().get(&token_digest(token)).cloned()
    }

    /// Who a presented token belongs to, with the credential an open session keeps.
    pub fn credential(&self, token: &str) -> Option<(Principal, Credential)> {
        let digest = token_digest(token);
        let principal = self.get().get(&digest).cloned()?;
        let changes = self.changes.subscribe();
        Some((principal, Credential { digest, changes }))
    }

    /// Whether `credential` still names `principal` (false once its token was replaced by a
    /// new one, or its person retired).
    pub fn holds(&self, credential: &Credential, principal: &Principal) -> bool {
        self.get().get(&credential.digest) == Some(principal)
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
